// GET /v1/routes, GET /v1/routes/{name}, PUT /v1/routes/{name}/read-percent.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <future>

#include "proxy/admin/api.hpp"
#include "proxy/admin/percent_body.hpp"
#include "proxy/control/state_store.hpp"
#include "proxy/telemetry/log.hpp"
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
  o["control"] = control_view(call.runtime);
  return json_response(http::status::ok, o);
}

AdminResponse handle_get_route(const AdminCall& call, std::string_view name) {
  const auto snap = call.runtime.snapshot();
  const auto* rr = find_route(*snap, name);
  if (!rr) return unknown_route(name);
  return json_response(http::status::ok, route_view(call.runtime, *rr));
}

namespace {

// What is checked before the store is asked; a response when the request stops here.
std::optional<AdminResponse> precheck_percent(const AdminCall& call, std::string_view name,
                                              ChangeRequest& req) {
  const auto snap = call.runtime.snapshot();
  const auto* rr = find_route(*snap, name);
  if (!rr) return unknown_route(name);
  std::string error;
  std::optional<std::uint64_t> epoch;
  const auto percent = parse_percent_body(call.request.body(), error, epoch);
  if (!percent) return error_response(http::status::bad_request, error);
  if (!rr->route->target && percent->basis_points() > 0) {
    return error_response(http::status::conflict,
                          "route \"" + std::string(name) +
                              "\" has no target, so its reads cannot be split; only 0 is allowed");
  }
  if (!call.runtime.states) {
    return error_response(http::status::service_unavailable, "route state is not available");
  }
  req.route = std::string(name);
  req.change = routing::SetReadPercent{percent->basis_points()};
  req.actor = call.actor.empty() ? call.peer : call.actor;
  req.expected_epoch = epoch;
  return std::nullopt;
}

AdminResponse percent_response(const AdminCall& call, std::string_view name,
                               const StateChangeResult& result) {
  auto with_epoch = [&](http::status status) {
    json::object o;
    o["error"] = result.message;
    o["epoch"] = result.before.epoch;
    return json_response(status, o);
  };
  switch (result.error) {
    case StateChangeError::none:
      break;
    case StateChangeError::unknown_route:
      return unknown_route(name);
    case StateChangeError::invalid:
      return error_response(http::status::bad_request, result.message);
    case StateChangeError::persist_failed:
      return error_response(http::status::internal_server_error, result.message);
    case StateChangeError::conflict:
    case StateChangeError::busy:
      return with_epoch(http::status::conflict);
    case StateChangeError::unavailable:
      return error_response(http::status::service_unavailable, result.message);
  }
  // The audit trail: who changed what, from what to what (the control database has the
  // same as a row of pgshift.audit). Never the token: the actor is its hash prefix.
  log_info("audit: read percent changed",
           {f("audit", "set_read_percent"), f("who", call.actor.empty() ? call.peer : call.actor),
            f("route", name), f("old", two_decimals(result.before.read_percent)),
            f("new", two_decimals(result.after.read_percent)), f("old_epoch", result.before.epoch),
            f("epoch", result.after.epoch), f("changed", result.changed() ? "true" : "false")});
  const auto snap = call.runtime.snapshot();
  const auto* rr = find_route(*snap, name);
  if (!rr) return unknown_route(name);
  auto view = route_view(call.runtime, *rr);
  view["changed"] = result.changed();
  return json_response(http::status::ok, view);
}

}  // namespace

AdminResponse handle_put_read_percent(const AdminCall& call, std::string_view name) {
  ChangeRequest req;
  if (auto res = precheck_percent(call, name, req)) return std::move(*res);
  std::promise<StateChangeResult> promise;
  auto future = promise.get_future();
  call.runtime.states->change(std::move(req),
                              [&promise](StateChangeResult r) { promise.set_value(std::move(r)); });
  return percent_response(call, name, future.get());
}

asio::awaitable<AdminResponse> handle_put_read_percent_async(AdminCall call, std::string name) {
  ChangeRequest req;
  if (auto res = precheck_percent(call, name, req)) co_return std::move(*res);
  // The store answers on its own thread (or at once); the answer is posted back here and
  // wakes this coroutine through the timer. The timer's expiry bounds the wait.
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex, std::chrono::seconds(30));
  auto slot = std::make_shared<std::optional<StateChangeResult>>();
  call.runtime.states->change(std::move(req), [timer, slot, ex](StateChangeResult r) {
    asio::post(ex, [timer, slot, r = std::move(r)]() mutable {
      *slot = std::move(r);
      timer->cancel();
    });
  });
  while (!*slot) {
    auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
    if (!ec && !*slot) {
      co_return error_response(http::status::service_unavailable,
                               "the control thread did not answer within 30 s; the change may "
                               "or may not have been applied: read the route's epoch");
    }
  }
  co_return percent_response(call, name, **slot);
}

}  // namespace pgshift::proxy
