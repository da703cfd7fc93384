// Admin HTTP requests on arbitrary bytes: Beast's request parser configured as the admin
// server configures it (proxy/admin/server.hpp Limits), then what the router does with a
// parsed request before any handler runs (the endpoint table of proxy/api: path, {name}
// decoding, allowed methods) and the three JSON bodies. Properties: nothing crashes or leaks;
// an accepted read percent is within 0..100.00; an accepted pause timeout is within its
// bounds; an accepted operation body only sets millisecond values within 1..300000; a matched
// endpoint and {name} rebuilt into a path match again; decoding inverts encoding.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/wire/fuzz_check.hpp"
#include "proxy/admin/percent_body.hpp"
#include "proxy/admin/request_parse.hpp"
#include "proxy/api/endpoints.hpp"

namespace {

namespace http = boost::beast::http;
using namespace pgshift::proxy;

constexpr std::size_t kMaxBody = 64 * 1024;    // AdminServer::Limits::max_body
constexpr std::size_t kMaxHeader = 16 * 1024;  // AdminServer::Limits::max_header

void check_bodies(std::string_view body) {
  std::string error;
  std::optional<std::uint64_t> epoch;
  const auto percent = parse_percent_body(body, error, epoch);
  if (percent) {
    FUZZ_CHECK(percent->basis_points() <= 10000);
  } else {
    FUZZ_CHECK(!error.empty());
  }
  if (const auto bp = exact_basis_points(body)) FUZZ_CHECK(*bp <= 10000);

  error.clear();
  const auto timeout = admin::parse_pause_body(body, std::chrono::milliseconds(30000),
                                               std::chrono::milliseconds(300000), error);
  if (timeout) {
    FUZZ_CHECK(timeout->count() >= 1 && timeout->count() <= 300000);
  } else {
    FUZZ_CHECK(!error.empty());
  }

  OperationRequest req;
  if (admin::parse_operation_body(body, req).empty()) {
    for (const auto& ms : {req.max_lag_ms, req.drain_timeout_ms}) {
      FUZZ_CHECK(!ms || (*ms >= 1 && *ms <= 300000));
    }
  }
}

// What the router does with a target before any handler runs (proxy/api/endpoints.hpp).
void check_target(http::verb method, std::string_view target) {
  const api::Match m = api::match(method, target);
  if (m.kind == api::Match::Kind::found) {
    FUZZ_CHECK(m.spec != nullptr && m.spec->method == method && m.pattern == m.spec->pattern);
    // The path ctl would send for this endpoint and name leads back to both.
    const api::Match again = api::match(method, api::path(m.spec->endpoint, m.name));
    FUZZ_CHECK(again.kind == api::Match::Kind::found && again.spec == m.spec &&
               again.name == m.name);
  } else if (m.kind == api::Match::Kind::method_not_allowed) {
    FUZZ_CHECK(!m.allowed.empty());
  }
  std::string decoded;
  if (api::decode_path_segment(target, decoded)) {
    std::string back;
    FUZZ_CHECK(api::decode_path_segment(api::encode_path_segment(decoded), back) &&
               back == decoded);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // The raw bytes as a body and as a target too: most inputs never make a valid request.
  check_bodies(in);
  check_target(http::verb::get, in);

  http::request_parser<http::string_body> parser;
  parser.body_limit(kMaxBody);
  parser.header_limit(static_cast<std::uint32_t>(kMaxHeader));
  parser.eager(true);
  boost::system::error_code ec;
  std::size_t used = 0;
  while (used < in.size() && !parser.is_done()) {
    const std::size_t n = parser.put(boost::asio::buffer(in.data() + used, in.size() - used), ec);
    if (ec == http::error::need_more) {
      ec = {};
      if (n == 0) break;
    }
    if (ec) return 0;
    used += n;
  }
  if (!parser.is_done()) {
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return 0;
  }
  const auto& req = parser.get();
  FUZZ_CHECK(req.body().size() <= kMaxBody);
  check_target(req.method(), std::string_view(req.target().data(), req.target().size()));
  check_bodies(req.body());
  return 0;
}
