#pragma once
// The pure part of the admin API's request handling, kept apart from sockets, the Runtime and
// the handlers so that fuzz/admin can run it on arbitrary bytes: the path -> endpoint table,
// the methods each endpoint allows, percent-decoding of {name}, and the JSON bodies of
// POST /v1/pause and POST /v1/routes/{name}/cutover|rollback|finalize|recover (PUT
// read-percent's body: percent_body.hpp). No I/O, no globals; thread-safe.
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/runtime/operations.hpp"

namespace pgshift::proxy::admin {

enum class Endpoint {
  healthz,
  readyz,
  metrics,
  routes,
  route,
  read_percent,
  cutover,  // POST, like rollback and finalize
  rollback,
  finalize,
  recover,
  operation,  // GET the latest of those four
  pause,
  resume,
  pools,
  members,
  unknown,
  bad_path
};

struct Match {
  Endpoint endpoint = Endpoint::unknown;
  std::string name;  // {name}, decoded
};

// The request target ("/v1/routes/a%20b/cutover?x") -> endpoint and decoded {name}.
Match match(std::string_view target);
// The metric label: the path template, never the raw path (bounded cardinality).
std::string_view label(Endpoint e);
// The methods the endpoint answers (empty: none, 404 follows).
std::vector<boost::beast::http::verb> allowed(Endpoint e);

// POST /v1/pause body: nothing (the default) or {"timeout_ms": 1..max}; nullopt with `error`.
std::optional<std::chrono::milliseconds> parse_pause_body(std::string_view body,
                                                          std::chrono::milliseconds default_timeout,
                                                          std::chrono::milliseconds max_timeout,
                                                          std::string& error);

// Operation bodies: nothing, or {"dry_run", "skip_verify", "max_lag_ms", "drain_timeout_ms"};
// fills `req`, returns an error message ("" when the body is good).
std::string parse_operation_body(std::string_view body, OperationRequest& req);

}  // namespace pgshift::proxy::admin

namespace pgshift::proxy {
// Percent-decodes one path segment ("a%20b" -> "a b"); false on a malformed escape.
bool url_decode(std::string_view in, std::string& out);
}  // namespace pgshift::proxy
