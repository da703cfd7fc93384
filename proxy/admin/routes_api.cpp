// GET /v1/routes, GET /v1/routes/{name}, PUT /v1/routes/{name}/read-percent.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>

#include "proxy/admin/api.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/control/route_state_store.hpp"
#include "routing/split.hpp"

namespace pgshift::proxy {
namespace {

const RouteRuntime* find_route(const Snapshot& snap, std::string_view name) {
  for (const auto& rr : snap.routes) {
    if (rr.route->name == name) return &rr;
  }
  return nullptr;
}

AdminResponse unknown_route(std::string_view name) {
  return error_response(http::status::not_found, "unknown route \"" + std::string(name) + "\"");
}

std::string number_text(const json::value& v) {
  return json::serialize(v);
}

// The body of PUT read-percent: exactly {"percent": <number 0..100, at most two decimals>}.
// Every rejection says what was wrong and what is expected.
std::optional<routing::ReadPercent> parse_percent_body(std::string_view body, std::string& error) {
  constexpr std::string_view kShape = R"(expected a JSON object like {"percent": 12.5})";
  if (body.empty()) {
    error = "request body is empty; " + std::string(kShape);
    return std::nullopt;
  }
  boost::system::error_code ec;
  const json::value v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) {
    error = "request body is not valid JSON (" + ec.message() + "); " + std::string(kShape);
    return std::nullopt;
  }
  if (!v.is_object()) {
    error = "request body must be a JSON object; " + std::string(kShape);
    return std::nullopt;
  }
  const auto& o = v.get_object();
  for (const auto& [key, value] : o) {
    if (key != "percent") {
      error = "unknown member \"" + std::string(key) + "\"; " + std::string(kShape);
      return std::nullopt;
    }
  }
  const json::value* p = o.if_contains("percent");
  if (p == nullptr) {
    error = "missing \"percent\"; " + std::string(kShape);
    return std::nullopt;
  }
  if (!p->is_number()) {
    error = "\"percent\" must be a number (got " + number_text(*p) + ")";
    return std::nullopt;
  }
  const double d = p->to_number<double>();
  if (!(d >= 0.0 && d <= 100.0)) {
    error = "\"percent\" must be between 0 and 100 (got " + number_text(*p) + ")";
    return std::nullopt;
  }
  auto percent = routing::ReadPercent::from_double(d);
  if (!percent) {
    error = "\"percent\" must have at most two decimals (got " + number_text(*p) + ")";
    return std::nullopt;
  }
  return percent;
}

std::string two_decimals(routing::ReadPercent p) {
  return admin_json_text(json::value(p.as_double()));
}

}  // namespace

AdminResponse handle_list_routes(const AdminCall& call) {
  const auto snap = call.runtime.snapshot();
  json::array routes;
  for (const auto& rr : snap->routes) routes.push_back(route_view(call.runtime, rr));
  json::object o;
  o["routes"] = std::move(routes);
  return json_response(http::status::ok, o);
}

AdminResponse handle_get_route(const AdminCall& call, std::string_view name) {
  const auto snap = call.runtime.snapshot();
  const auto* rr = find_route(*snap, name);
  if (!rr) return unknown_route(name);
  return json_response(http::status::ok, route_view(call.runtime, *rr));
}

AdminResponse handle_put_read_percent(const AdminCall& call, std::string_view name) {
  const auto snap = call.runtime.snapshot();
  const auto* rr = find_route(*snap, name);
  if (!rr) return unknown_route(name);
  std::string error;
  const auto percent = parse_percent_body(call.request.body(), error);
  if (!percent) return error_response(http::status::bad_request, error);
  if (!rr->route->target && percent->basis_points() > 0) {
    return error_response(http::status::conflict,
                          "route \"" + std::string(name) +
                              "\" has no target, so its reads cannot be split; only 0 is allowed");
  }
  if (!call.runtime.states) {
    return error_response(http::status::service_unavailable, "route state is not available");
  }
  const auto result =
      call.runtime.states->apply(name, routing::SetReadPercent{percent->basis_points()});
  switch (result.error) {
    case StateChangeError::none:
      break;
    case StateChangeError::unknown_route:
      return unknown_route(name);
    case StateChangeError::invalid:
      return error_response(http::status::bad_request, result.message);
    case StateChangeError::persist_failed:
      return error_response(http::status::internal_server_error, result.message);
  }
  // The audit trail: who changed what, from what to what.
  log_info("audit: read percent changed",
           {f("audit", "set_read_percent"), f("who", call.peer), f("route", name),
            f("old", two_decimals(result.before.read_percent)),
            f("new", two_decimals(result.after.read_percent)), f("old_epoch", result.before.epoch),
            f("epoch", result.after.epoch), f("changed", result.changed() ? "true" : "false")});
  auto view = route_view(call.runtime, *rr);
  view["changed"] = result.changed();
  return json_response(http::status::ok, view);
}

}  // namespace pgshift::proxy
