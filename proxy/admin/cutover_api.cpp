// POST /v1/routes/{name}/cutover | rollback | finalize and GET /v1/routes/{name}/operation
// (docs/admin-api.md, docs/cutover.md). The operation runs on a thread of its own
// (Runtime::operations); these handlers only start it and read its progress, so the admin
// server's I/O thread never waits on a database.
#include <boost/json/parse.hpp>

#include "proxy/admin/api.hpp"
#include "proxy/runtime/operations.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy {
namespace {

constexpr std::string_view kShape =
    R"(expected an empty body or a JSON object like {"dry_run": true, "max_lag_ms": 500, )"
    R"("drain_timeout_ms": 5000, "skip_verify": false})";

// Fills `req` from the optional body; an error message when the body is wrong.
std::string parse_options(std::string_view body, OperationRequest& req) {
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

}  // namespace

AdminResponse handle_route_operation(const AdminCall& call, std::string_view name,
                                     std::string_view action) {
  if (!call.runtime.operations) {
    return error_response(http::status::service_unavailable,
                          "cutover is not available in this pgshift (no route state)");
  }
  OperationRequest req;
  req.route = std::string(name);
  req.kind = std::string(action);
  req.actor = "admin@" + call.peer;
  if (auto error = parse_options(call.request.body(), req); !error.empty()) {
    return error_response(http::status::bad_request, error);
  }
  const auto started = call.runtime.operations->start(req);
  log_info("audit: operation requested",
           {f("audit", req.kind), f("who", req.actor), f("route", name),
            f("dry_run", req.dry_run ? "true" : "false"),
            f("skip_verify", req.skip_verify ? "true" : "false"), f("status", started.status),
            f("error", started.error)});
  if (started.status != 202) {
    return error_response(static_cast<http::status>(started.status), started.error);
  }
  auto res = json_response(http::status::accepted, started.operation);
  res.set(http::field::location, "/v1/routes/" + std::string(name) + "/operation");
  return res;
}

AdminResponse handle_get_operation(const AdminCall& call, std::string_view name) {
  if (!call.runtime.operations) {
    return error_response(http::status::service_unavailable, "cutover is not available");
  }
  auto status = call.runtime.operations->status(name);
  if (!status) {
    return error_response(http::status::not_found,
                          "no cutover, rollback or finalize has run on route \"" +
                              std::string(name) + "\" since this pgshift started");
  }
  return json_response(http::status::ok, *status);
}

}  // namespace pgshift::proxy
