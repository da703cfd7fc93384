// GET /v1/members: the fleet as this sidecar's control thread last read it (refreshed every
// control.poll_ms; docs/control-plane.md), and the control plane's connection state.
#include "proxy/admin/api.hpp"
#include "proxy/control/state_store.hpp"

namespace pgshift::proxy {

json::object control_view(const Runtime& runtime) {
  json::object o;
  if (!runtime.states) {
    o["mode"] = nullptr;
    return o;
  }
  const auto s = runtime.states->control_status();
  o["mode"] = s.mode;
  o["connected"] = s.connected;
  o["member_id"] = s.member_id.empty() ? json::value(nullptr) : json::value(s.member_id);
  o["database"] = s.database.empty() ? json::value(nullptr) : json::value(s.database);
  o["error"] = s.error.empty() ? json::value(nullptr) : json::value(s.error);
  o["member_timeout_ms"] = s.member_timeout_ms;
  return o;
}

AdminResponse handle_list_members(const AdminCall& call) {
  json::object out;
  out["control"] = control_view(call.runtime);
  json::array members;
  if (call.runtime.states) {
    for (const auto& m : call.runtime.states->members()) {
      json::object mo;
      mo["id"] = m.id;
      mo["self"] = m.self;
      mo["live"] = m.live;
      mo["version"] = m.version;
      mo["address"] = m.address;
      mo["heartbeat_age_ms"] = m.heartbeat_age_ms;
      json::array routes;
      for (const auto& r : m.routes) routes.emplace_back(r);
      mo["routes"] = std::move(routes);
      json::object applied;
      for (const auto& [route, epoch] : m.applied) applied[route] = epoch;
      mo["applied"] = std::move(applied);
      members.push_back(std::move(mo));
    }
  }
  out["members"] = std::move(members);
  return json_response(http::status::ok, out);
}

}  // namespace pgshift::proxy
