#include "proxy/admin/request_parse.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace pgshift::proxy::admin {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

constexpr std::string_view kShape =
    R"(expected an empty body or a JSON object like {"dry_run": true, "max_lag_ms": 500, )"
    R"("drain_timeout_ms": 5000, "skip_verify": false})";

}  // namespace

std::string parse_operation_body(std::string_view body, OperationRequest& req) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return {};
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !v.is_object()) return "request body is not a JSON object; " + std::string(kShape);
  for (const auto& [key, value] : v.get_object()) {
    if (key == "dry_run" || key == "skip_verify") {
      if (!value.is_bool()) return "\"" + std::string(key) + "\" must be true or false";
      (key == "dry_run" ? req.dry_run : req.skip_verify) = value.get_bool();
    } else if (key == "max_lag_ms" || key == "drain_timeout_ms") {
      if (!value.is_int64() && !value.is_uint64()) {
        return "\"" + std::string(key) + "\" must be a whole number of milliseconds";
      }
      const auto n = value.to_number<std::int64_t>();
      if (n < 1 || n > 300000) {
        return "\"" + std::string(key) + "\" must be between 1 and 300000";
      }
      (key == "max_lag_ms" ? req.max_lag_ms : req.drain_timeout_ms) = n;
    } else {
      return "unknown member \"" + std::string(key) + "\"; " + std::string(kShape);
    }
  }
  return {};
}

std::optional<std::chrono::milliseconds> parse_pause_body(std::string_view body,
                                                          std::chrono::milliseconds default_timeout,
                                                          std::chrono::milliseconds max_timeout,
                                                          std::string& error) {
  const auto max_ms = max_timeout.count();
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return default_timeout;
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec || !v.is_object()) {
    error = std::string(ec ? "request body is not valid JSON (" + ec.message() + "); "
                           : "request body must be a JSON object; ") +
            R"(expected nothing or {"timeout_ms": 30000})";
    return std::nullopt;
  }
  for (const auto& [key, value] : v.get_object()) {
    if (key != "timeout_ms") {
      error = "unknown member \"" + std::string(key) + R"("; expected {"timeout_ms": 30000})";
      return std::nullopt;
    }
  }
  const json::value* t = v.get_object().if_contains("timeout_ms");
  if (t == nullptr) return default_timeout;
  // Boost.JSON keeps integers that fit as int64; uint64 means "above INT64_MAX".
  const std::int64_t ms = t->is_int64() ? t->get_int64() : t->is_uint64() ? max_ms + 1 : -1;
  if (ms < 1 || ms > max_ms) {
    error = "\"timeout_ms\" must be an integer between 1 and " + std::to_string(max_ms) + " (got " +
            json::serialize(*t) + ")";
    return std::nullopt;
  }
  return std::chrono::milliseconds(ms);
}

std::string_view label(Endpoint e) {
  switch (e) {
    case Endpoint::healthz:
      return "/healthz";
    case Endpoint::readyz:
      return "/readyz";
    case Endpoint::metrics:
      return "/metrics";
    case Endpoint::routes:
      return "/v1/routes";
    case Endpoint::route:
      return "/v1/routes/{name}";
    case Endpoint::read_percent:
      return "/v1/routes/{name}/read-percent";
    case Endpoint::cutover:
      return "/v1/routes/{name}/cutover";
    case Endpoint::rollback:
      return "/v1/routes/{name}/rollback";
    case Endpoint::finalize:
      return "/v1/routes/{name}/finalize";
    case Endpoint::recover:
      return "/v1/routes/{name}/recover";
    case Endpoint::operation:
      return "/v1/routes/{name}/operation";
    case Endpoint::pause:
      return "/v1/pause";
    case Endpoint::resume:
      return "/v1/resume";
    case Endpoint::pools:
      return "/v1/pools";
    case Endpoint::members:
      return "/v1/members";
    case Endpoint::unknown:
    case Endpoint::bad_path:
      return "other";
  }
  return "other";
}

std::vector<http::verb> allowed(Endpoint e) {
  switch (e) {
    case Endpoint::read_percent:
      return {http::verb::put};
    case Endpoint::cutover:
    case Endpoint::rollback:
    case Endpoint::finalize:
    case Endpoint::recover:
      return {http::verb::post};
    case Endpoint::pause:
      return {http::verb::get, http::verb::post};
    case Endpoint::resume:
      return {http::verb::post};
    case Endpoint::unknown:
    case Endpoint::bad_path:
      return {};
    default:
      return {http::verb::get};
  }
}

Match match(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/healthz") return {Endpoint::healthz, {}};
  if (path == "/readyz") return {Endpoint::readyz, {}};
  if (path == "/metrics") return {Endpoint::metrics, {}};
  if (path == "/v1/routes") return {Endpoint::routes, {}};
  if (path == "/v1/pause") return {Endpoint::pause, {}};
  if (path == "/v1/resume") return {Endpoint::resume, {}};
  if (path == "/v1/pools") return {Endpoint::pools, {}};
  if (path == "/v1/members") return {Endpoint::members, {}};
  constexpr std::string_view kRoutes = "/v1/routes/";
  if (!path.starts_with(kRoutes)) return {};
  std::string_view rest = path.substr(kRoutes.size());
  Endpoint e = Endpoint::route;
  const auto slash = rest.find('/');
  if (slash != std::string_view::npos) {
    const auto sub = rest.substr(slash + 1);
    if (sub == "read-percent") {
      e = Endpoint::read_percent;
    } else if (sub == "cutover" || sub == "rollback" || sub == "finalize" || sub == "recover") {
      e = sub == "cutover"    ? Endpoint::cutover
          : sub == "rollback" ? Endpoint::rollback
          : sub == "finalize" ? Endpoint::finalize
                              : Endpoint::recover;
    } else if (sub == "operation") {
      e = Endpoint::operation;
    } else {
      return {};
    }
    rest = rest.substr(0, slash);
  }
  Match m{e, {}};
  if (rest.empty() || !url_decode(rest, m.name)) return {Endpoint::bad_path, {}};
  return m;
}

}  // namespace pgshift::proxy::admin

namespace pgshift::proxy {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

bool url_decode(std::string_view in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size()) return false;
    const int hi = hex_value(in[i + 1]);
    const int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return true;
}

}  // namespace pgshift::proxy
