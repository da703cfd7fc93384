// Recovery of a mirror start whose coordinator died during the copy (mirror_start.hpp,
// run_mirror_recover; docs/sync.md "If the sidecar running sync start dies").
#include "proxy/migrate/mirror_start.hpp"
#include "proxy/migrate/step_log.hpp"
#include "proxy/migrate/sync_common.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::migrate {
namespace {

using Clock = std::chrono::steady_clock;
using config::Phase;
using ms = std::chrono::milliseconds;

class MirrorRecover {
 public:
  MirrorRecover(const std::string& route, const routing::MigrationState& current,
                const SwitchEndpoints& ep, control::Fleet& fleet, const MirrorStartOptions& opt,
                const StepListener& listener)
      : route_(route), current_(current), ep_(ep), fleet_(fleet), opt_(opt), listener_(listener) {
    out_.kind = SwitchKind::recover;
    out_.route = route;
  }

  SwitchOutcome run() {
    const auto start = Clock::now();
    out_.result = "aborted";
    const bool ok = steps_.run("preconditions", [&] { return preconditions(); }) &&
                    steps_.run("mirror_off", [&] { return mirror_off(); }) &&
                    steps_.run("empty_target", [&] { return empty_target(); }) &&
                    steps_.run("forget_copy", [&] { return forget_copy(); });
    if (ok) {
      out_.result = "completed";
      out_.databases =
          "both databases as before the interrupted sync start: mirroring off, the route's "
          "tables on the target empty; run pgshift sync start " +
          route_ + " again";
    } else if (out_.result == "refused") {
      out_.databases = "nothing was changed";
    } else if (!mirror_is_off_) {
      out_.databases = "unchanged: still in phase sync with the copy pending";
    } else {
      out_.databases =
          "mirroring is off (phase source_only); the target's tables of the route "
          "may hold part of the copy: run pgshift ctl recover again, or TRUNCATE "
          "them and run pgshift sync start";
    }
    out_.total = std::chrono::duration_cast<ms>(Clock::now() - start);
    proxy::log_info("mirror recover ended",
                    {proxy::f("route", route_), proxy::f("result", out_.result),
                     proxy::f("error", out_.error)});
    return out_;
  }

 private:
  std::string preconditions() {
    if (current_.phase != Phase::sync) {
      throw std::runtime_error("route " + route_ + " is in phase " +
                               std::string(routing::phase_name(current_.phase)) +
                               "; recover of a mirrored route ends a sync start that died "
                               "during its copy (phase sync)");
    }
    target_ = pgclient::Connection::connect(ep_.target);
    source_ = pgclient::Connection::connect(ep_.source);
    auto r = target_.exec(
        "SELECT copied_at IS NOT NULL, "
        "(extract(epoch FROM now() - coalesce(heartbeat_at, started_at)) * 1000)::bigint "
        "FROM pgshift.mirror_copies WHERE route = $1",
        {route_});
    if (r.rows() == 0 || r.get(0, 0) == "t") {
      throw std::runtime_error("nothing to recover: the copy of route " + route_ +
                               " is done (pgshift.mirror_copies on the target)");
    }
    const auto age = std::stoll(std::string(r.get(0, 1)));
    if (age < kMirrorHeartbeatStale.count()) {
      throw std::runtime_error("the copy of route " + route_ +
                               " is running: its coordinator wrote a heartbeat " +
                               std::to_string(age) + " ms ago (recover once it is older than " +
                               std::to_string(kMirrorHeartbeatStale.count()) + " ms)");
    }
    return "the copy of route " + route_ + " is pending and its coordinator is gone (last " +
           "heartbeat " + std::to_string(age / 1000) + " s ago)";
  }

  std::string mirror_off() {
    const auto state = commit_phase_through_fleet(fleet_, route_, "mirror_recover", opt_.actor,
                                                  opt_.drain_timeout, Phase::source_only);
    mirror_is_off_ = true;
    return "phase source_only at epoch " + std::to_string(state.epoch) +
           ": the sidecars stop mirroring and drop what they queued for the copy";
  }

  // The start found these tables empty on the target, and no replay runs before the copy is
  // recorded done: what is in them now is the interrupted copy.
  std::string empty_target() {
    config::Route r;
    r.name = route_;
    r.sync.tables = opt_.tables;
    const auto tables = route_tables(source_, r);
    std::string list;
    for (const auto& t : tables) list += (list.empty() ? "" : ", ") + t.qualified();
    if (!list.empty()) target_.exec("TRUNCATE " + list);
    return "emptied " + std::to_string(tables.size()) + " table(s) on the target";
  }

  std::string forget_copy() {
    target_.exec("DELETE FROM pgshift.mirror_copies WHERE route = $1", {route_});
    return "the pending copy's row removed from pgshift.mirror_copies";
  }

  const std::string route_;
  const routing::MigrationState current_;
  const SwitchEndpoints& ep_;
  control::Fleet& fleet_;
  const MirrorStartOptions& opt_;
  const StepListener& listener_;
  SwitchOutcome out_;
  pgclient::Connection source_, target_;
  bool mirror_is_off_ = false;
  StepLog steps_{out_, listener_};  // after out_
};

}  // namespace

SwitchOutcome run_mirror_recover(const std::string& route, const routing::MigrationState& current,
                                 const SwitchEndpoints& endpoints, control::Fleet& fleet,
                                 const MirrorStartOptions& options, const StepListener& listener) {
  return MirrorRecover(route, current, endpoints, fleet, options, listener).run();
}

}  // namespace pgshift::migrate
