// LocalFleet: the fleet barrier of a sidecar without a control database. The hold is the
// pause gate's per-route hold; the drain waits on the route's open-transaction counter; the
// commit is a change of the state file (published before the hold is released, so the
// held transactions run on the new state).
#include <thread>

#include "proxy/control/fleets.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::control {
namespace {
using proxy::f;
using Clock = std::chrono::steady_clock;
}  // namespace

LocalFleet::LocalFleet(std::shared_ptr<proxy::RouteStateStore> store,
                       std::shared_ptr<proxy::PauseGate> gate)
    : store_(std::move(store)), gate_(std::move(gate)) {}

HoldResult LocalFleet::hold(const HoldRequest& request) {
  HoldResult out;
  const auto* state = store_->snapshot()->find(request.route);
  if (!state) {
    out.error = "unknown route \"" + request.route + "\"";
    return out;
  }
  {
    std::lock_guard lock(mu_);
    if (auto it = held_.find(request.route);
        it != held_.end() && gate_->route_held(request.route)) {
      out.error =
          "route \"" + request.route + "\" is already held by a " + it->second + " operation";
      return out;
    }
    held_[request.route] = request.kind;
  }
  out.epoch = state->epoch;
  gate_->hold_route(request.route, request.deadline);
  // The coordinator's own thread waits; the sessions end their transactions on theirs, the
  // mirror replays what they committed.
  const auto until = Clock::now() + request.drain_timeout;
  for (auto d = gate_->drain_state(request.route); !d.drained();
       d = gate_->drain_state(request.route)) {
    if (!d.refusal.empty() || Clock::now() >= until) {
      out.error =
          "route \"" + request.route + "\": " + d.describe() +
          (d.refusal.empty() ? " after " + std::to_string(request.drain_timeout.count()) + " ms"
                             : "");
      abort(request.route, out.error);
      return out;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  out.ok = true;
  out.members = 1;
  out.held_transactions = gate_->waiting(request.route);
  proxy::log_info("barrier: route held (this sidecar alone)",
                  {f("route", request.route), f("kind", request.kind), f("epoch", out.epoch)});
  return out;
}

CommitResult LocalFleet::commit(const std::string& route, const routing::StateChange& change) {
  CommitResult out;
  {
    std::lock_guard lock(mu_);
    if (!held_.count(route) || !gate_->route_held(route)) {
      held_.erase(route);
      out.error = "route \"" + route + "\" is not held (hold() first, or its deadline passed)";
      return out;
    }
  }
  auto r = store_->apply(route, change);
  if (!r.ok()) {
    out.error = r.message;
    return out;  // still held: the caller aborts or retries
  }
  out.ok = true;
  out.state = r.after;
  {
    std::lock_guard lock(mu_);
    held_.erase(route);
  }
  gate_->release_route(route);
  return out;
}

void LocalFleet::abort(const std::string& route, std::string_view reason) {
  {
    std::lock_guard lock(mu_);
    if (!held_.erase(route)) return;
  }
  gate_->release_route(route);
  proxy::log_warn("barrier: aborted (this sidecar alone)",
                  {f("route", route), f("reason", reason)});
}

std::unique_ptr<Fleet> make_fleet(const config::Config& cfg,
                                  const std::shared_ptr<proxy::StateStore>& states,
                                  const std::shared_ptr<proxy::PauseGate>& gate) {
  if (config::control_upstream(cfg)) return PgFleet::from_config(cfg);
  auto file = std::dynamic_pointer_cast<proxy::RouteStateStore>(states);
  if (!file || !gate) {
    throw std::runtime_error(
        "no fleet: control is 'file' and this process has no state store "
        "and pause gate of its own (run the coordinator in the sidecar)");
  }
  return std::make_unique<LocalFleet>(std::move(file), gate);
}

}  // namespace pgshift::control
