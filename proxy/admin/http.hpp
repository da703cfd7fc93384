#pragma once
// Types and helpers shared by the admin HTTP API (admin_server.cpp serves it, admin_router.cpp
// dispatches, admin_*_api.cpp answer). Every response body is JSON except /metrics; every
// error is {"error": "..."} with a message meant for a human operator.
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/runtime/runtime.hpp"

namespace pgshift::proxy {

namespace http = boost::beast::http;
namespace json = boost::json;

using AdminRequest = http::request<http::string_body>;
using AdminResponse = http::response<http::string_body>;

// One request as the endpoint handlers see it.
struct AdminCall {
  Runtime& runtime;
  const AdminRequest& request;
  const std::string& peer;  // "127.0.0.1:53412": the "who" of audit lines
  // The audit's actor: "admin:<first 8 hex of SHA-256 of the token>@<peer>", never the token.
  std::string actor{};
};

AdminResponse json_response(http::status status, const json::value& body);
AdminResponse error_response(http::status status, std::string_view message);

// Serializes like boost::json::serialize, except that every double is written with exactly
// two decimals (12.5 -> 12.50; Boost would write 1.25E1): the read percent is a two-decimal
// quantity and operators read these responses with their eyes and with jq.
std::string admin_json_text(const json::value& v);

// 1700000000123 -> "2023-11-14T22:13:20.123Z"; 0 or less -> null.
json::value iso8601_utc(std::int64_t unix_ms);

}  // namespace pgshift::proxy
