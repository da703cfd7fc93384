#include "proxy/migrate/cutover_local_fleet.hpp"

#include <algorithm>

#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::migrate {

SidecarFleet::SidecarFleet(std::shared_ptr<proxy::RouteStateStore> states,
                           std::shared_ptr<proxy::PauseGate> pause)
    : states_(std::move(states)), pause_(std::move(pause)) {}

control::HoldResult SidecarFleet::hold(const control::HoldRequest& request) {
  control::HoldResult r;
  std::lock_guard lock(mu_);
  // A hold whose pause has ended by its own deadline (its coordinator died or hung) no
  // longer blocks a new operation, e.g. the recover that cleans up after it.
  if (!held_route_.empty()) {
    const auto st = pause_->status();
    if (!st.paused || st.pause_id != held_pause_id_) held_route_.clear();
  }
  if (!held_route_.empty()) {
    r.error = "a " + held_kind_ + " of route " + held_route_ + " is in progress";
    return r;
  }
  const auto states = states_->snapshot();
  const auto* st = states->find(request.route);
  if (!st) {
    r.error = "unknown route " + request.route;
    return r;
  }
  const auto timeout = std::clamp(request.deadline, std::chrono::milliseconds(1),
                                  std::chrono::milliseconds(proxy::PauseGate::kMaxTimeout));
  held_pause_id_ = pause_->pause(timeout).pause_id;
  const std::uint64_t epoch = st->epoch;
  held_route_ = request.route;
  held_kind_ = request.kind;
  r.ok = true;
  r.epoch = epoch;
  r.members = 1;
  r.held_transactions = pause_->status().waiting;
  return r;
}

control::CommitResult SidecarFleet::commit(const std::string& route,
                                           const routing::StateChange& change) {
  control::CommitResult r;
  std::lock_guard lock(mu_);
  if (held_route_ != route) {
    r.error = "route " + route + " is not held";
    return r;
  }
  auto changed = states_->apply(route, change);
  if (!changed.ok()) {
    r.error = changed.message;
    return r;  // still held: the coordinator aborts
  }
  const auto released = pause_->resume();
  proxy::log_info("fleet commit", {proxy::f("route", route), proxy::f("epoch", changed.after.epoch),
                                   proxy::f("released", released.waiting)});
  held_route_.clear();
  r.ok = true;
  r.state = changed.after;
  return r;
}

void SidecarFleet::abort(const std::string& route, std::string_view reason) {
  std::lock_guard lock(mu_);
  if (held_route_ != route) return;
  pause_->resume();
  proxy::log_info("fleet abort", {proxy::f("route", route), proxy::f("reason", reason)});
  held_route_.clear();
}

}  // namespace pgshift::migrate
