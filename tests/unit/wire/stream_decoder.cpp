#include "stream_decoder.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <type_traits>

#include "wire/messages.hpp"
#include "wire/startup.hpp"

// EXPECT_* builds an AssertionResult even on success; the split tests run these checks
// millions of times, so the hot paths use a plain branch instead.
#define WIRE_CHECK(cond)                                  \
  do {                                                    \
    if (!(cond)) ADD_FAILURE() << "check failed: " #cond; \
  } while (false)

namespace pgshift::wire::test {
namespace {

std::string printable(std::string_view s) {
  const auto is_plain = [](char c) { return c >= 0x20 && c < 0x7f; };
  if (std::all_of(s.begin(), s.end(), is_plain)) return std::string(s);
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

std::string printable(std::span<const std::uint8_t> b) {
  return printable(std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

// A std::string with operator<< for the few types we print (ostringstream is too slow for
// the hundreds of thousands of decodings the split tests run).
struct Text {
  std::string s;
  Text& operator<<(std::string_view v) {
    s += v;
    return *this;
  }
  Text& operator<<(const std::string& v) {
    s += v;
    return *this;
  }
  Text& operator<<(const char* v) {
    s += v;
    return *this;
  }
  Text& operator<<(char c) {
    s += c;
    return *this;
  }
  template <typename T>
  requires std::is_integral_v<T> Text& operator<<(T v) {
    s += std::to_string(v);
    return *this;
  }
  std::string str() { return std::move(s); }
};

std::string describe_frontend(std::uint8_t type, Body body, std::error_code& ec) {
  Text o;
  switch (type) {
    case 'Q': {
      std::string_view sql;
      ec = parse_query(body, sql);
      o << "sql=" << printable(sql);
      break;
    }
    case 'P': {
      Parse p;
      ec = parse_parse(body, p);
      o << "stmt=" << printable(p.statement) << " sql=" << printable(p.query) << " types=";
      for (auto t : p.param_types) o << t << ";";
      break;
    }
    case 'B': {
      BindNames b;
      ec = parse_bind_names(body, b);
      o << "portal=" << printable(b.portal) << " stmt=" << printable(b.statement);
      break;
    }
    case 'C':
    case 'D': {
      CloseOrDescribe c;
      ec = type == 'C' ? parse_close(body, c) : parse_describe(body, c);
      o << "kind=" << c.kind << " name=" << printable(c.name);
      break;
    }
    case 'E': {
      Execute e;
      ec = parse_execute(body, e);
      o << "portal=" << printable(e.portal) << " max_rows=" << e.max_rows;
      break;
    }
    case 'p': {
      SaslInitialResponse s;
      if (!parse_sasl_initial_response(body, s)) {
        o << "sasl mech=" << printable(s.mechanism) << " data=" << printable(s.data);
      } else if (std::string_view password; !parse_password(body, password)) {
        o << "password=" << printable(password);
      } else {
        o << "sasl_response data=" << printable(body);  // SASLResponse: raw bytes
      }
      break;
    }
    default:
      o << "size=" << body.size();  // the bytes are the stream's own: offsets say the rest
  }
  return o.str();
}

std::string describe_backend(std::uint8_t type, Body body, std::error_code& ec) {
  Text o;
  switch (type) {
    case 'R': {
      Authentication a;
      ec = parse_authentication(body, a);
      o << "auth=" << static_cast<int>(a.code) << " salt=" << printable(a.md5_salt) << " mechs=";
      for (auto m : a.sasl_mechanisms) o << m << ";";
      o << " data=" << printable(a.sasl_data);
      break;
    }
    case 'K': {
      BackendKeyData k;
      ec = parse_backend_key_data(body, k);
      o << "pid=" << k.pid << " secret=" << k.secret;
      break;
    }
    case 'S': {
      ParameterStatus p;
      ec = parse_parameter_status(body, p);
      o << printable(p.name) << "=" << printable(p.value);
      break;
    }
    case 'Z': {
      char status = '?';
      ec = parse_ready_for_query(body, status);
      o << "status=" << status;
      break;
    }
    case 'E':
    case 'N': {
      ErrorFields f;
      ec = parse_error_fields(body, f);
      for (const auto& [code, value] : f.fields) o << code << ":" << printable(value) << ";";
      break;
    }
    case 'C': {
      std::string_view tag;
      ec = parse_command_complete(body, tag);
      o << "tag=" << printable(tag);
      break;
    }
    default:
      o << "size=" << body.size();  // the bytes are the stream's own: offsets say the rest
  }
  return o.str();
}

}  // namespace

std::string describe_message(Direction dir, std::uint8_t type, std::span<const std::uint8_t> body) {
  std::error_code ec;
  std::string text = dir == Direction::frontend ? describe_frontend(type, body, ec)
                                                : describe_backend(type, body, ec);
  if (ec) text += " PARSE-ERROR:" + ec.message();
  return text;
}

StreamDecoder::StreamDecoder(std::span<const std::uint8_t> stream, Direction dir,
                             MessageScanner::TypeSet wanted, bool with_startup, Limits limits)
    : stream_(stream),
      dir_(dir),
      limits_(limits),
      scanner_(dir, limits, wanted),
      in_startup_(with_startup) {}

void StreamDecoder::deliver(std::size_t received) {
  WIRE_CHECK(received >= received_ && received <= stream_.size());
  received_ = received;
  if (in_startup_) decode_startup_phase();
  if (!in_startup_) decode_messages();
}

void StreamDecoder::decode_startup_phase() {
  while (in_startup_ && !failed_) {
    const auto r = decode_startup(stream_.subspan(pos_, received_ - pos_), limits_);
    Text o;
    switch (r.kind) {
      case StartupKind::need_more:
        WIRE_CHECK(r.consumed == 0u);
        return;
      case StartupKind::error:
        events_.push_back("startup error: " + r.error.message());
        failed_ = true;
        return;
      case StartupKind::ssl_request:
        o << "ssl_request";
        break;
      case StartupKind::gssenc_request:
        o << "gssenc_request";
        break;
      case StartupKind::cancel_request:
        o << "cancel pid=" << r.cancel.pid << " secret=" << r.cancel.secret;
        break;
      case StartupKind::startup:
        o << "startup protocol=" << r.startup.protocol;
        for (const auto& [k, v] : r.startup.params) o << " " << printable(k) << "=" << printable(v);
        in_startup_ = false;  // typed messages follow
        break;
    }
    WIRE_CHECK(r.consumed >= 8u);
    WIRE_CHECK(r.consumed <= received_ - pos_);
    pos_ += r.consumed;
    events_.push_back(o.str());
  }
}

void StreamDecoder::decode_messages() {
  for (;;) {
    const auto data = stream_.subspan(pos_, received_ - pos_);
    const ScanResult r = scanner_.feed(data);
    switch (r.kind) {
      case ScanKind::need_more:
        WIRE_CHECK(r.consumed == 0u);
        WIRE_CHECK(!scanner_.failed());
        if (scanner_.at_boundary() && !data.empty() &&
            scanner_.bytes_needed() > 0) {  // a wanted message, or a partial header
          WIRE_CHECK(scanner_.bytes_needed() > data.size());
        }
        return;
      case ScanKind::error:
        WIRE_CHECK(r.consumed == 0u);
        WIRE_CHECK(scanner_.failed());
        if (!failed_) events_.push_back("error: " + r.error.message());
        failed_ = true;
        return;
      case ScanKind::message: {
        WIRE_CHECK(r.consumed == 5u + r.body.size());
        WIRE_CHECK(r.length == r.body.size() + 4);
        WIRE_CHECK(r.type == data[0]);
        WIRE_CHECK(r.body.data() == data.data() + 5);  // a view into the input, not a copy
        WIRE_CHECK(scanner_.at_boundary());
        Text o;
        o << "msg " << static_cast<char>(r.type) << " len=" << r.length << " at=" << pos_ << " "
          << describe_message(dir_, r.type, r.body);
        events_.push_back(o.str());
        pos_ += r.consumed;
        break;
      }
      case ScanKind::skip: {
        WIRE_CHECK(r.consumed > 0u);
        WIRE_CHECK(r.consumed <= data.size());
        if (r.first_piece) {
          WIRE_CHECK(r.consumed >= 5u);
          WIRE_CHECK(r.type == data[0]);
          skip_start_ = pos_;
        }
        pos_ += r.consumed;
        WIRE_CHECK(scanner_.at_boundary() == r.last_piece);
        if (r.last_piece) {
          // The pieces, put together, are exactly the original frame.
          WIRE_CHECK(pos_ - skip_start_ == std::size_t{r.length} + 1);
          Text o;
          o << "skip " << static_cast<char>(r.type) << " len=" << r.length << " at=" << skip_start_;
          events_.push_back(o.str());
        }
        break;
      }
    }
  }
}

std::vector<std::string> decode_in_chunks(std::span<const std::uint8_t> stream, Direction dir,
                                          MessageScanner::TypeSet wanted, bool with_startup,
                                          std::span<const std::size_t> chunks) {
  StreamDecoder d(stream, dir, wanted, with_startup);
  std::size_t received = 0;
  for (std::size_t c : chunks) {
    received = std::min(stream.size(), received + c);
    d.deliver(received);
  }
  d.deliver(stream.size());
  auto events = d.events();
  if (!d.failed()) {
    // A complete stream ends on a message boundary with everything consumed.
    EXPECT_EQ(d.consumed(), stream.size());
  }
  return events;
}

}  // namespace pgshift::wire::test
