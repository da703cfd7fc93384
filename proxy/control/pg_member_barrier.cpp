// The member side of the fleet barrier (docs/control-plane.md, "Barrier"), on the control
// thread of PgStateStore: a route whose row has an open operation (op_state prepare, epoch
// + 1, deadline ahead) is held in the pause gate; once its open transactions have ended
// (or drain_timeout passed) this member acknowledges in pgshift.acks; the hold ends when
// the operation is committed (the new state is published first, so held transactions run
// on it), aborted, or its deadline passes. An operation still open after its deadline (its
// coordinator died) is marked aborted by the first member that notices.
#include "proxy/control/pg_state_store.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

namespace pc = pgcontrol;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A member releases by itself this long after the deadline when it cannot read the control
// database; while it can, the row decides (commit, abort, or the clean-up below).
constexpr milliseconds kSelfReleaseGrace{1000};
constexpr milliseconds kDefaultDrain{5000};

}  // namespace

void PgStateStore::follow_operation(const std::string& route, const pc::RouteRow& row) {
  auto it = holds_.find(route);
  if (row.op_open() && row.op_epoch == row.state.epoch + 1) {
    if (it != holds_.end() && it->second.op_epoch == row.op_epoch) return;  // already held
    const auto open =
        gate_->hold_route(route, milliseconds(row.op_remaining_ms) + kSelfReleaseGrace);
    const auto drain = row.op_drain_ms > 0 ? milliseconds(row.op_drain_ms) : kDefaultDrain;
    holds_[route] = Hold{row.op_epoch, Clock::now() + drain, false};
    log_info("barrier: route held for a fleet operation",
             {f("route", route), f("kind", row.op_kind), f("op_epoch", row.op_epoch),
              f("coordinator", row.op_coordinator), f("open_transactions", open),
              f("deadline_in_ms", row.op_remaining_ms)});
    return;
  }
  if (row.op_stale()) {
    // Deadline passed, neither committed nor aborted: the coordinator is gone.
    const std::string reason = "deadline passed without commit or abort (coordinator " +
                               row.op_coordinator + "); cleaned up by member " + opt_.member_id;
    const bool cleaned = pc::in_transaction(conn_, [&] {
      if (!pc::abort_operation(conn_, route, row.op_epoch, reason)) return false;
      pc::audit(
          conn_, route, "member:" + opt_.member_id, "abort_expired",
          "{\"op_kind\":\"" + row.op_kind + "\",\"op_epoch\":" + std::to_string(row.op_epoch) + "}",
          std::nullopt, "aborted");
      pc::notify(conn_, pc::kStateChannel, route);
      return true;
    });
    if (cleaned) {
      log_warn("barrier: operation past its deadline marked aborted",
               {f("route", route), f("kind", row.op_kind), f("op_epoch", row.op_epoch),
                f("coordinator", row.op_coordinator)});
    }
  }
  if (it == holds_.end()) return;
  const bool committed = row.op_state == "committed" && row.state.epoch == it->second.op_epoch;
  release(route, committed ? "committed" : "aborted");
}

void PgStateStore::barrier_step() {
  const auto now = Clock::now();
  for (auto& [route, hold] : holds_) {
    if (hold.acked) continue;
    // Open transactions ended and, on a mirrored route, everything they committed replayed.
    const auto drain = gate_->drain_state(route);
    const bool drained = drain.drained();
    if (!drained && drain.refusal.empty() && now < hold.drain_deadline) continue;
    const std::string detail =
        drained ? "" : drain.describe() + (drain.refusal.empty() ? " after drain_timeout_ms" : "");
    conn_.exec(
        "INSERT INTO pgshift.acks (route, epoch, member, ok, detail, held) "
        "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        {route, std::to_string(hold.op_epoch), opt_.member_id, drained ? "true" : "false",
         drained ? pgclient::Param{} : pgclient::Param{detail},
         std::to_string(gate_->waiting(route))});
    pc::notify(conn_, pc::kAckChannel, route);
    hold.acked = true;
    if (drained) {
      log_info("barrier: acknowledged (no open transaction of the route, nothing to replay)",
               {f("route", route), f("op_epoch", hold.op_epoch)});
    } else {
      log_warn("barrier: refused",
               {f("route", route), f("op_epoch", hold.op_epoch), f("open_transactions", drain.open),
                f("pending_replays", drain.pending_replays), f("why", detail)});
    }
  }
}

void PgStateStore::release(const std::string& route, std::string_view why) {
  gate_->release_route(route);
  holds_.erase(route);
  metrics().barrier_holds(std::string(why)).Increment();
  log_info("barrier: route released", {f("route", route), f("outcome", why)});
}

}  // namespace pgshift::proxy
