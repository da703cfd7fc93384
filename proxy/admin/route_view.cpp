// The JSON shape of a route in GET /v1/routes, GET /v1/routes/{name} and PUT responses.
#include <algorithm>
#include <chrono>

#include "proxy/admin/api.hpp"
#include "proxy/control/health_checker.hpp"
#include "proxy/control/state_store.hpp"
#include "proxy/runtime/mirror_sink.hpp"

namespace pgshift::proxy {
namespace {

json::value health_view(const RouteHealthPtr& route, routing::Side side) {
  json::object o;
  if (!route) {
    o["status"] = "unknown";
    return o;
  }
  const auto r = route->side(side).report();
  o["status"] = !r.checked ? "unknown" : r.healthy ? "healthy" : "unhealthy";
  o["check"] = r.method.empty() ? json::value(nullptr) : json::value(r.method);
  o["checked_at"] = iso8601_utc(r.last_check_ms);
  o["since"] = iso8601_utc(r.since_ms);
  o["error"] = r.last_error.empty() ? json::value(nullptr) : json::value(r.last_error);
  return o;
}

json::object upstream_view(const config::Upstream& u, const RouteHealthPtr& health,
                           routing::Side side) {
  json::object o;
  o["host"] = u.host;
  o["port"] = u.port;
  // Empty means "the database the client asked for" (wildcard routes).
  o["database"] = u.database.empty() ? json::value(nullptr) : json::value(u.database);
  o["user"] = u.passthrough || u.user.empty() ? json::value(nullptr) : json::value(u.user);
  o["passthrough"] = u.passthrough;
  o["tls"] = config::to_string(u.tls.mode);
  o["health"] = health_view(health, side);
  return o;
}

// The route's sync: its mode and, for logical sync, the lag measured by the marker
// (routing/sync_position.hpp): null until a marker has been applied on the other side.
json::object sync_view(const Runtime& runtime, const RouteRuntime& rr) {
  json::object o;
  o["mode"] = config::to_string(rr.route->sync.mode);
  if (runtime.mirror && rr.route->sync.mode == config::SyncMode::mirror) {
    auto m = runtime.mirror->status(rr.route->name);
    o["mirror"] = m ? json::value(std::move(*m)) : json::value(nullptr);
  }
  if (!rr.sync) return o;
  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
  const std::int64_t lag = rr.sync->lag_ms(now);
  const bool known = rr.sync->applied_before_ms() != routing::SyncPosition::kUnknown;
  o["lag_ms"] = known ? json::value(lag) : json::value(nullptr);
  o["max_lag_ms"] = rr.sync->max_lag_ms();
  o["lagging"] = rr.sync->lagging(now);
  const std::int64_t origin = rr.sync->origin_unix_ms();
  o["marker_time"] =
      origin == routing::SyncPosition::kUnknown ? json::value(nullptr) : iso8601_utc(origin);
  return o;
}

}  // namespace

json::object route_view(const Runtime& runtime, const RouteRuntime& rr) {
  const auto& r = *rr.route;
  json::object o;
  o["name"] = r.name;
  o["client_database"] = r.client_database;
  o["client_user"] = r.client_user ? json::value(*r.client_user) : json::value(nullptr);
  const auto states = runtime.states ? runtime.states->snapshot() : nullptr;
  const auto* state = states ? states->find(r.name) : nullptr;
  if (state) {
    o["phase"] = routing::phase_name(state->phase);
    o["previous_phase"] = routing::phase_name(state->previous_phase);
    o["authoritative"] = routing::to_string(routing::authoritative_side(*state));
    // Always a double, so admin_json_text writes it with two decimals (12.50, 100.00).
    o["read_percent"] = state->read_percent.as_double();
    o["read_percent_bp"] = state->read_percent.basis_points();
    o["epoch"] = state->epoch;
    o["updated_at"] = iso8601_utc(state->updated_at_ms);
    // The fleet: the epoch each live member serving the route has applied (GET
    // /v1/members has the full rows).
    json::array members;
    int live = 0, at_epoch = 0;
    for (const auto& m : runtime.states->members()) {
      if (std::find(m.routes.begin(), m.routes.end(), r.name) == m.routes.end()) continue;
      auto it = m.applied.find(r.name);
      json::object mo;
      mo["id"] = m.id;
      mo["applied_epoch"] = it == m.applied.end() ? json::value(nullptr) : json::value(it->second);
      mo["live"] = m.live;
      mo["self"] = m.self;
      members.push_back(std::move(mo));
      if (!m.live) continue;
      ++live;
      if (it != m.applied.end() && it->second == state->epoch) ++at_epoch;
    }
    o["members"] = std::move(members);
    o["live_members"] = live;
    o["members_at_epoch"] = at_epoch;
  } else {
    o["phase"] = nullptr;  // a route added by a reload a moment ago
  }
  const auto health = runtime.health ? runtime.health->route(r.name) : nullptr;
  o["source"] = upstream_view(r.source, health, routing::Side::source);
  o["target"] = r.target ? json::value(upstream_view(*r.target, health, routing::Side::target))
                         : json::value(nullptr);
  o["sync"] = sync_view(runtime, rr);
  return o;
}

}  // namespace pgshift::proxy
