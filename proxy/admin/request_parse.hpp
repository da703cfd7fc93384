#pragma once
// The JSON bodies of POST /v1/pause and POST /v1/routes/{name}/cutover|rollback|finalize|
// recover|mirror-*, kept apart from sockets, the Runtime and the handlers so that fuzz/admin
// can run them on arbitrary bytes (the path table is proxy/api/endpoints.hpp; PUT
// read-percent's body: percent_body.hpp). No I/O, no globals; thread-safe.
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/runtime/operations.hpp"

namespace pgshift::proxy::admin {

// POST /v1/pause body: nothing (the default) or {"timeout_ms": 1..max}; nullopt with `error`.
std::optional<std::chrono::milliseconds> parse_pause_body(std::string_view body,
                                                          std::chrono::milliseconds default_timeout,
                                                          std::chrono::milliseconds max_timeout,
                                                          std::string& error);

// Operation bodies: nothing, or {"dry_run", "skip_verify", "max_lag_ms", "drain_timeout_ms"};
// fills `req`, returns an error message ("" when the body is good).
std::string parse_operation_body(std::string_view body, OperationRequest& req);

}  // namespace pgshift::proxy::admin
