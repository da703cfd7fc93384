// Fuzzes MessageScanner in both directions and the parse_* functions on every whole message.
// Input: [flags][seed][stream...]. flags bit 0: backend; bits 1-2: wanted set (inspect, all,
// none); bit 3: tiny limits (so the caps are hit often). The stream is decoded twice, in one
// chunk and in pseudo-random chunks from `seed`; both runs must see the same messages.
// Parsed messages are rebuilt with builder.cpp and must come out byte-identical.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_check.hpp"
#include "wire/builder.hpp"
#include "wire/messages.hpp"
#include "wire/scanner.hpp"

using namespace pgshift::wire;

namespace {

struct Event {
  ScanKind kind;
  std::uint8_t type;
  std::uint32_t length;
  std::size_t offset;
  int parse_error;
  bool operator==(const Event&) const = default;
};

bool same_bytes(std::span<const std::uint8_t> frame, const Bytes& built) {
  return frame.size() == built.size() && std::equal(frame.begin(), frame.end(), built.begin());
}

// Parses a whole message; where a builder exists, rebuilding must give back the same frame.
int parse_message(Direction dir, std::span<const std::uint8_t> frame) {
  const std::uint8_t type = frame[0];
  const Body body = frame.subspan(5);
  Bytes built;
  std::error_code ec;
  if (dir == Direction::frontend) {
    switch (type) {
      case 'Q': {
        std::string_view sql;
        if (!(ec = parse_query(body, sql))) {
          query(built, sql);
          FUZZ_CHECK(same_bytes(frame, built));
        }
        break;
      }
      case 'P': {
        Parse p;
        if (!(ec = parse_parse(body, p))) {
          parse(built, p.statement, p.query, p.param_types);
          FUZZ_CHECK(same_bytes(frame, built));
        }
        break;
      }
      case 'B': {
        BindNames b;
        Bind whole;
        ec = parse_bind(body, whole);
        const std::error_code names_ec = parse_bind_names(body, b);
        // A valid Bind always has valid names, and both parsers agree on them.
        if (!ec)
          FUZZ_CHECK(!names_ec && b.portal == whole.portal && b.statement == whole.statement);
        break;
      }
      case 'C': {
        CloseOrDescribe c;
        if (!(ec = parse_close(body, c)) && c.kind == 'S') {
          close_statement(built, c.name);
          FUZZ_CHECK(same_bytes(frame, built));
        }
        break;
      }
      case 'D': {
        CloseOrDescribe c;
        ec = parse_describe(body, c);
        break;
      }
      case 'E': {
        Execute e;
        ec = parse_execute(body, e);
        break;
      }
      case 'p': {
        SaslInitialResponse s;
        std::string_view password;
        if (!(ec = parse_sasl_initial_response(body, s)) && !s.data.empty()) {
          sasl_initial_response(
              built, s.mechanism,
              std::string_view(reinterpret_cast<const char*>(s.data.data()), s.data.size()));
          FUZZ_CHECK(same_bytes(frame, built));
        }
        if (!(ec = parse_password(body, password))) {
          password_message(built = {}, password);
          FUZZ_CHECK(same_bytes(frame, built));
        }
        break;
      }
      default:
        break;
    }
    return ec.value();
  }
  switch (type) {
    case 'R': {
      Authentication a;
      ec = parse_authentication(body, a);
      if (!ec && a.code == AuthCode::sasl) {
        auth_sasl(built, a.sasl_mechanisms);
        FUZZ_CHECK(same_bytes(frame, built));
      }
      if (!ec && a.code == AuthCode::md5) FUZZ_CHECK(a.md5_salt.size() == 4);
      break;
    }
    case 'K': {
      BackendKeyData k;
      if (!(ec = parse_backend_key_data(body, k))) {
        backend_key_data(built, k.pid, k.secret);
        FUZZ_CHECK(same_bytes(frame, built));
      }
      break;
    }
    case 'S': {
      ParameterStatus p;
      if (!(ec = parse_parameter_status(body, p))) {
        parameter_status(built, p.name, p.value);
        FUZZ_CHECK(same_bytes(frame, built));
      }
      break;
    }
    case 'Z': {
      char status = 0;
      if (!(ec = parse_ready_for_query(body, status))) {
        ready_for_query(built, status);
        FUZZ_CHECK(same_bytes(frame, built));
      }
      break;
    }
    case 'E':
    case 'N': {
      ErrorFields f;
      ec = parse_error_fields(body, f);
      if (!ec) (void)f.severity();
      break;
    }
    case 't': {
      std::vector<std::uint32_t> types;
      if (!(ec = parse_parameter_description(body, types))) {
        FUZZ_CHECK(types.size() <= 65535);
        parameter_description(built, types);
        FUZZ_CHECK(same_bytes(frame, built));
      }
      break;
    }
    case 'C': {
      std::string_view tag;
      if (!(ec = parse_command_complete(body, tag))) {
        command_complete(built, tag);
        FUZZ_CHECK(same_bytes(frame, built));
      }
      break;
    }
    default:
      break;
  }
  return ec.value();
}

// Decodes `stream` delivered in chunks; chunk sizes come from `next_chunk` (0 = all the rest).
template <typename NextChunk>
std::vector<Event> decode(std::span<const std::uint8_t> stream, Direction dir,
                          const MessageScanner::TypeSet& wanted, const Limits& limits,
                          NextChunk next_chunk) {
  MessageScanner scanner(dir, limits, wanted);
  std::vector<Event> events;
  std::size_t pos = 0, received = 0, skip_start = 0;
  while (received < stream.size()) {
    const std::size_t c = next_chunk();
    received = c == 0 ? stream.size() : std::min(stream.size(), received + c);
    for (;;) {
      const auto data = stream.subspan(pos, received - pos);
      const ScanResult r = scanner.feed(data);
      FUZZ_CHECK(r.consumed <= data.size());
      if (r.kind == ScanKind::need_more) {
        FUZZ_CHECK(r.consumed == 0 && !scanner.failed());
        break;
      }
      if (r.kind == ScanKind::error) {
        FUZZ_CHECK(r.consumed == 0 && scanner.failed() && r.error);
        FUZZ_CHECK(scanner.feed(data).kind == ScanKind::error);  // stays failed
        events.push_back({r.kind, 0, 0, pos, r.error.value()});
        return events;
      }
      FUZZ_CHECK(r.consumed > 0);
      FUZZ_CHECK(r.length >= 4 && r.length <= MessageScanner::max_length_for(dir, limits, r.type));
      if (r.kind == ScanKind::message) {
        FUZZ_CHECK(r.consumed == std::size_t{r.length} + 1 && r.body.size() == r.length - 4);
        FUZZ_CHECK(r.body.data() == data.data() + 5 && wanted[r.type]);
        events.push_back(
            {r.kind, r.type, r.length, pos, parse_message(dir, data.first(r.consumed))});
      } else {
        if (r.first_piece) skip_start = pos;
        FUZZ_CHECK(scanner.at_boundary() == r.last_piece);
        if (r.last_piece) {
          FUZZ_CHECK(pos + r.consumed - skip_start == std::size_t{r.length} + 1);
          events.push_back({r.kind, r.type, r.length, skip_start, 0});
        }
      }
      pos += r.consumed;
    }
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t flags = data[0];
  std::uint32_t rng = data[1] * 2654435761u + 1;
  const std::span<const std::uint8_t> stream(data + 2, size - 2);

  const Direction dir = (flags & 1) ? Direction::backend : Direction::frontend;
  MessageScanner::TypeSet wanted;
  switch ((flags >> 1) & 3) {
    case 0:
      wanted = dir == Direction::frontend ? type_set({'Q', 'P', 'B', 'C', 'D', 'E', 'p'})
                                          : type_set({'R', 'K', 'S', 'Z', 'E', 'N', 'C', 't'});
      break;
    case 1:
      wanted.set();
      break;
    default:
      break;  // nothing wanted: everything is skipped
  }
  Limits limits;
  if (flags & 8) {
    limits.max_small_length = 40;
    limits.max_small_backend_length = 60;
    limits.max_auth_length = 80;
    limits.max_message_length = 200;
  }

  const auto whole = decode(stream, dir, wanted, limits, [] { return std::size_t{0}; });
  const auto split = decode(stream, dir, wanted, limits, [&] {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return std::size_t{1} + rng % 16;
  });
  FUZZ_CHECK(whole == split);
  return 0;
}
