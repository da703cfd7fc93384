// POST /v1/routes/{name}/cutover | rollback | finalize and GET /v1/routes/{name}/operation
// (docs/admin-api.md, docs/cutover.md). The operation runs on a thread of its own
// (Runtime::operations); these handlers only start it and read its progress, so the admin
// server's I/O thread never waits on a database.
#include <boost/json/parse.hpp>

#include "proxy/admin/api.hpp"
#include "proxy/admin/request_parse.hpp"
#include "proxy/runtime/operations.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy {
namespace {}  // namespace

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
  if (auto error = admin::parse_operation_body(call.request.body(), req); !error.empty()) {
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
