#include "proxy/admin/request_parse.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace pgshift::proxy::admin {

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

}  // namespace pgshift::proxy::admin
