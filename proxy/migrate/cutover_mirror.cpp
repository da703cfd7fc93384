// Cutover and rollback of a route with sync.mode mirror (docs/cutover.md, "Mirrored routes").
// The steps are the logical ones with the stream replaced by the sidecars' mirrors:
//   preconditions  the coordinating sidecar's mirror is streaming (the copy done, not
//                  stopped), its oldest unreplayed transaction is younger than --max-lag-ms,
//                  and a clean verify run is recorded after its last divergence;
//   hold           every member acknowledges only once the transactions its clients
//                  committed are replayed (PauseGate::drain_state, the mirror's backlog);
//   catch_up       nothing is left to wait for: the hold did it (checked again here);
//   reverse_mirror the old side's fence lets the mirror's replay through, so from the commit
//                  on every sidecar replays the new side's writes there (rollback loses
//                  nothing).
#include <thread>

#include "proxy/migrate/cutover_switch.hpp"

namespace pgshift::migrate::detail {
namespace {

constexpr ms kLagPoll{20};
constexpr ms kLagBudget{5000};

std::string ms_text(ms d) {
  return std::to_string(d.count()) + " ms";
}

}  // namespace

void Switch::mirror_preconditions() {
  const auto& m = *opt_.mirror;
  tables_ = m.tables(from());
  if (tables_.empty()) {
    throw Refusal("the " + dir_.from_name + " has no table of route " + route_ +
                  " (sync.tables) to fence");
  }
  auto copied = target_.exec(
      "SELECT copied_at IS NOT NULL FROM pgshift.mirror_copies WHERE route = $1", {route_});
  if (copied.rows() == 0 || copied.get(0, 0) != "t") {
    throw Refusal("the initial copy of route " + route_ +
                  " to the target is not recorded as done (pgshift.mirror_copies); wait for "
                  "pgshift sync start to finish, or run it again");
  }
  if (!fenced_tables(from()).empty()) {
    throw Refusal("the " + dir_.from_name + " already carries pgshift_fence triggers (an " +
                  "interrupted operation? pgshift ctl recover " + route_ +
                  " ends it); nothing was changed");
  }
  std::int64_t divergence_ms = 0;
  if (m.local) {
    // The queue drains as the replay goes; give it kLagBudget to come under max_lag.
    const auto until = Clock::now() + std::max(kLagBudget, opt_.max_lag * 3);
    auto d = m.local();
    while (d.stopped == false && d.lag > opt_.max_lag && Clock::now() < until) {
      std::this_thread::sleep_for(kLagPoll);
      d = m.local();
    }
    if (d.stopped) {
      throw Refusal("the mirror of route " + route_ + " is stopped: " + d.detail);
    }
    if (d.condition != "streaming") {
      throw Refusal("the mirror of route " + route_ + " is " + d.condition +
                    (d.detail.empty() ? "" : " (" + d.detail + ")") + ", not streaming");
    }
    if (d.lag > opt_.max_lag) {
      throw Refusal("lag above --max-lag-ms " + ms_text(opt_.max_lag) + ": the mirror's oldest " +
                    "unreplayed transaction committed " + ms_text(d.lag) + " ago (" +
                    std::to_string(d.pending) + " pending)");
    }
    divergence_ms = d.last_divergence_unix_ms;
  }
  verify_precondition(divergence_ms);
}

bool Switch::mirror_catch_up() {
  return step("catch_up", [&] {
    if (opt_.mirror->local) {
      const auto d = opt_.mirror->local();
      if (d.pending > 0) {
        throw std::runtime_error(std::to_string(d.pending) +
                                 " committed transactions of this sidecar are still waiting for "
                                 "the mirror after the hold");
      }
    }
    return "every member had replayed its clients' committed transactions on the " + dir_.to_name +
           " when it acknowledged the hold";
  });
}

bool Switch::reverse_mirror_step() {
  return step("reverse_mirror", [&] {
    // fence_tables() (re)creates the function; an older one would stop the mirror's replay.
    auto r = from().exec(
        "SELECT prosrc LIKE '%pgshift.mirror_replay%' FROM pg_proc"
        " WHERE oid = 'pgshift.fence()'::regprocedure");
    if (r.rows() == 0 || r.get(0, 0) != "t") {
      throw std::runtime_error("pgshift.fence() on the " + dir_.from_name +
                               " does not let the mirror's replay through");
    }
    return "from the commit on, every sidecar replays the " + dir_.to_name + "'s writes on the " +
           dir_.from_name + " (its fence lets the mirror through)";
  });
}

}  // namespace pgshift::migrate::detail
