// POST /v1/pause, POST /v1/resume, GET /v1/pause.
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "proxy/admin/api.hpp"
#include "proxy/admin/request_parse.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy {
namespace {

json::object status_view(const PauseGate::Status& s) {
  json::object o;
  o["paused"] = s.paused;
  o["remaining_ms"] = s.paused ? json::value(s.remaining.count()) : json::value(nullptr);
  o["waiting"] = s.waiting;
  o["pause_id"] = s.pause_id;
  return o;
}

AdminResponse gate_missing() {
  return error_response(http::status::service_unavailable, "the pause gate is not available");
}

}  // namespace

AdminResponse handle_pause(const AdminCall& call) {
  if (!call.runtime.pause) return gate_missing();
  std::string error;
  const auto timeout = admin::parse_pause_body(call.request.body(), PauseGate::kDefaultTimeout,
                                               PauseGate::kMaxTimeout, error);
  if (!timeout) return error_response(http::status::bad_request, error);
  const bool was_paused = call.runtime.pause->status().paused;
  const auto s = call.runtime.pause->pause(*timeout);
  log_info("audit: new transactions paused",
           {f("audit", "pause"), f("who", call.peer), f("old", was_paused ? "paused" : "running"),
            f("new", "paused"), f("timeout_ms", timeout->count()), f("pause_id", s.pause_id)});
  return json_response(http::status::ok, status_view(s));
}

AdminResponse handle_resume(const AdminCall& call) {
  if (!call.runtime.pause) return gate_missing();
  const auto before = call.runtime.pause->resume();
  log_info("audit: transactions resumed", {f("audit", "resume"), f("who", call.peer),
                                           f("old", before.paused ? "paused" : "running"),
                                           f("new", "running"), f("released", before.waiting)});
  auto o = status_view(call.runtime.pause->status());
  o["was_paused"] = before.paused;
  o["released"] = before.paused ? before.waiting : std::size_t{0};
  return json_response(http::status::ok, o);
}

AdminResponse handle_get_pause(const AdminCall& call) {
  if (!call.runtime.pause) return gate_missing();
  return json_response(http::status::ok, status_view(call.runtime.pause->status()));
}

}  // namespace pgshift::proxy
