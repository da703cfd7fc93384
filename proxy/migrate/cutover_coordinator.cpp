#include "proxy/migrate/cutover_coordinator.hpp"

#include <algorithm>
#include <optional>
#include <stdexcept>
#include <thread>

#include "proxy/migrate/cutover_metrics.hpp"
#include "proxy/migrate/cutover_switch.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::migrate::detail {
namespace {

constexpr ms kWorkerStartWait{10000};
constexpr ms kLagBudget{5000};

}  // namespace

void Switch::record(StepRecord r) {
  cutover_metrics().step_seconds(route_, r.name).Observe(r.duration.count() / 1000.0);
  proxy::log_info("cutover step",
                  {proxy::f("audit", std::string(to_string(kind_))), proxy::f("route", route_),
                   proxy::f("step", r.name), proxy::f("status", r.status),
                   proxy::f("duration_ms", static_cast<std::int64_t>(r.duration.count())),
                   proxy::f("detail", r.detail), proxy::f("who", opt_.actor)});
  if (listener_) listener_(r);
  out_.steps.push_back(std::move(r));
}

void Switch::undo_all() {
  while (!undo_.empty()) {
    Undo u = std::move(undo_.back());
    undo_.pop_back();
    const auto start = Clock::now();
    StepRecord r{"undo " + u.name, "ok", ms(0), {}};
    try {
      u.run();
      undone_.push_back(u.name);
    } catch (const std::exception& e) {
      r.status = "failed";
      r.detail = e.what();
      out_.databases += "undo of " + u.name + " FAILED (" + e.what() + "); ";
    }
    r.duration = since(start);
    record(std::move(r));
  }
  if (held_at_) out_.pause = since(*held_at_);
}

void Switch::preconditions() {
  // A route whose sync was started without recording phase sync (pgshift sync start keeps
  // the phase) may be cut over too: the stream's health is checked in the databases below,
  // and the begin step records sync first.
  const bool unrecorded_sync = kind_ == SwitchKind::cutover && current_.phase == Phase::source_only;
  if (current_.phase != dir_.expected && !unrecorded_sync) {
    throw Refusal("route " + route_ + " is in phase " +
                  std::string(routing::phase_name(current_.phase)) + "; " +
                  std::string(to_string(kind_)) + " needs phase " +
                  std::string(routing::phase_name(dir_.expected)) +
                  (current_.phase == Phase::cutover
                       ? " (an operation is in progress, or was interrupted: pgshift ctl "
                         "recover " +
                             route_ + " ends it)"
                       : ""));
  }
  if (kind_ == SwitchKind::recover && current_.previous_phase != Phase::sync &&
      current_.previous_phase != Phase::target_primary) {
    throw Refusal("route " + route_ + " entered phase cutover from " +
                  std::string(routing::phase_name(current_.previous_phase)) +
                  "; recover only ends a cutover (from sync) or a rollback (from "
                  "target_primary)");
  }
  // Every statement of the coordinator is bounded, so a database that stops answering
  // aborts the operation instead of hanging it (lock waits have their own, shorter bound).
  auto bounded = [](pgclient::ConnInfo c) {
    c.options += (c.options.empty() ? "" : " ") + std::string("-c statement_timeout=60000");
    return c;
  };
  source_ = Connection::connect(bounded(ep_.source));
  target_ = Connection::connect(bounded(ep_.target));
  if (kind_ == SwitchKind::recover) return;
  auto ro = to().exec("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')");
  if (ro.get(0, 0) == "t" || ro.get(0, 1) == "on") {
    throw Refusal("the " + dir_.to_name + " (" + pgclient::describe(to().info()) +
                  ") is read-only; it must accept writes to take the route");
  }
  if (kind_ == SwitchKind::finalize) return;
  if (opt_.mirror) {
    mirror_preconditions();  // cutover_mirror.cpp
  } else {
    stream_preconditions();
  }
}

// The stream from the old side is healthy and caught up, the old side is not fenced, and a
// verify run is recorded (or skipped).
void Switch::stream_preconditions() {
  auto h = subscription_health(to(), dir_.in_stream);
  // A stream created moments ago (by the last switch) gets its apply worker from the
  // launcher within a few seconds: give it that long before calling the stream unhealthy.
  const auto worker_deadline = Clock::now() + kWorkerStartWait;
  while (h.exists && h.enabled && !h.worker_running && Clock::now() < worker_deadline) {
    std::this_thread::sleep_for(ms(20));
    h = subscription_health(to(), dir_.in_stream);
  }
  if (!h.exists) {
    throw Refusal("subscription " + dir_.in_stream + " does not exist on the " + dir_.to_name +
                  "; start the sync first (pgshift sync start " + route_ + ")");
  }
  if (!h.enabled || !h.worker_running) {
    throw Refusal("subscription " + dir_.in_stream + " on the " + dir_.to_name +
                  (h.enabled ? " has no running apply worker after " +
                                   std::to_string(kWorkerStartWait.count() / 1000) +
                                   " s (see the server log)"
                             : " is disabled (ALTER SUBSCRIPTION ... ENABLE)"));
  }
  if (h.ready != h.tables) {
    std::string list;
    for (const auto& t : h.not_ready) list += (list.empty() ? "" : ", ") + t;
    throw Refusal("subscription " + dir_.in_stream + ": tables still copying: " + list);
  }
  tables_ = publication_tables(from(), dir_.in_stream);
  if (!fenced_tables(from()).empty()) {
    throw Refusal("the " + dir_.from_name + " already carries pgshift_fence triggers (an " +
                  "interrupted operation? pgshift ctl recover " + route_ +
                  " ends it); nothing was changed");
  }
  // Lag: a marker must cross within max_lag. A stream that is catching up (e.g. one started
  // by the last switch, whose worker the launcher started a few seconds later) gets another
  // marker once the last one has arrived, until kLagBudget has passed.
  const auto budget_end = Clock::now() + std::max(kLagBudget, opt_.max_lag * 3);
  for (;;) {
    const auto written = Clock::now();
    const auto seq = write_marker(from(), route_, dir_.from_name);
    if (wait_for_marker(to(), route_, dir_.from_name, seq, opt_.max_lag)) break;
    const auto left = std::chrono::duration_cast<ms>(budget_end - Clock::now());
    const bool arrived = left > ms(0) && wait_for_marker(to(), route_, dir_.from_name, seq, left);
    if (!arrived || Clock::now() >= budget_end) {
      throw Refusal("lag above --max-lag-ms " + std::to_string(opt_.max_lag.count()) +
                    " ms: a marker written on the " + dir_.from_name + " was visible on the " +
                    dir_.to_name + " after " +
                    (arrived ? std::to_string(since(written).count()) + " ms"
                             : "more than " + std::to_string(since(written).count()) + " ms") +
                    " (markers were retried for " +
                    std::to_string(std::max(kLagBudget, opt_.max_lag * 3).count()) + " ms)");
    }
  }
  verify_precondition();
}

// A clean verify run recorded after the route's last state change (a completed or aborted
// cutover/rollback, a recorded sync phase, a read-percentage change): the streams compared
// then are the ones that will be switched now. verify compares source and target whichever
// is authoritative, so a clean run after a cutover is valid for the rollback.
void Switch::verify_precondition(std::int64_t divergence_unix_ms) const {
  if (opt_.skip_verify) {
    proxy::log_warn(
        "cutover without a recorded verify run",
        {proxy::f("audit", "skip_verify"), proxy::f("route", route_),
         proxy::f("operation", std::string(to_string(kind_))), proxy::f("who", opt_.actor)});
    return;
  }
  const std::string fix =
      "; run pgshift verify " + route_ + " --config FILE, or pass --skip-verify";
  VerifyRecord rec;
  try {
    if (opt_.verify_record) rec = opt_.verify_record(route_);
  } catch (const std::exception& e) {
    throw Refusal("verify: the recorded verify runs cannot be read (" + std::string(e.what()) +
                  ")" + fix);
  }
  const auto& run = rec.latest;
  if (!run) throw Refusal("verify: no verify run is recorded for route " + route_ + fix);
  const auto ago = [](std::int64_t unix_ms) {
    const auto now =
        std::chrono::duration_cast<ms>(std::chrono::system_clock::now().time_since_epoch()).count();
    return std::to_string(std::max<std::int64_t>(0, now - unix_ms) / 1000) + " s ago";
  };
  if (!run->equal) {
    throw Refusal("verify: the latest verify run of route " + route_ + " (finished " +
                  ago(run->finished_at_ms) + ") found " + std::to_string(run->differences) +
                  " table(s) different or not verified: " + run->summary + fix);
  }
  if (run->finished_at_ms <= current_.updated_at_ms) {
    throw Refusal("verify: the latest clean verify run of route " + route_ + " finished " +
                  ago(run->finished_at_ms) + ", before the route's last state change (" +
                  ago(current_.updated_at_ms) + ")" + fix);
  }
  if (run->finished_at_ms <= rec.sync_started_at_ms) {
    throw Refusal("verify: the latest clean verify run of route " + route_ + " finished " +
                  ago(run->finished_at_ms) + ", before the sync was last started (" +
                  ago(rec.sync_started_at_ms) + ")" + fix);
  }
  if (run->finished_at_ms <= divergence_unix_ms) {
    throw Refusal("verify: the mirror of route " + route_ + " recorded a divergence " +
                  ago(divergence_unix_ms) + ", after the latest clean verify run (finished " +
                  ago(run->finished_at_ms) + "); see the mirror journal" + fix);
  }
}

void Switch::switch_steps() {
  const std::string moved_to = dir_.to_name;
  if (!step("drain", [&] {
        // Two passes: the second catches a transaction that passed the hold just before it
        // began and reached the database only after the first pass's reference time. (The
        // control plane's fleets also count such transactions in the sidecars.)
        const auto until = Clock::now() + opt_.drain_timeout;
        int open = 0;
        for (int pass = 0; pass < 2 && open == 0; ++pass) {
          const auto left = std::max(ms(0), std::chrono::duration_cast<ms>(until - Clock::now()));
          open = wait_for_transactions_before(from(), database_now(from()), left);
        }
        if (open > 0) {
          throw std::runtime_error(std::to_string(open) + " transaction(s) still open on the " +
                                   dir_.from_name + " after --drain-timeout-ms " +
                                   std::to_string(opt_.drain_timeout.count()));
        }
        return std::string("no open writer on the ") + dir_.from_name;
      })) {
    return;
  }
  if (!step("fence", [&] {
        auto st = fence_tables(from(), tables_, route_, moved_to, opt_.drain_timeout);
        undo_.push_back({"fence", [this] { unfence_tables(from(), tables_); }});
        return std::to_string(tables_.size()) + " table(s) of the " + dir_.from_name + " fenced (" +
               std::to_string(st.attempts) + " lock attempt(s))";
      })) {
    return;
  }
  if (opt_.mirror) {
    if (!mirror_catch_up()) return;
    move_streams();
    return;
  }
  if (!step("catch_up", [&] {
        const auto seq = write_marker(from(), route_, dir_.from_name);
        if (!wait_for_marker(to(), route_, dir_.from_name, seq, opt_.catch_up_timeout)) {
          throw std::runtime_error("marker " + std::to_string(seq) + " written on the " +
                                   dir_.from_name + " after the fence did not reach the " +
                                   dir_.to_name + " within " +
                                   std::to_string(opt_.catch_up_timeout.count()) + " ms");
        }
        return "marker " + std::to_string(seq) + " visible on the " + dir_.to_name;
      })) {
    return;
  }
  move_streams();
}

// sequences -> stop_stream -> start_reverse_stream (logical) or reverse_mirror (mirror)
//   -> unfence_new_side -> commit
void Switch::move_streams() {
  if (!step("sequences", [&] {
        auto copied = copy_sequences(from(), to(), opt_.sequence_gap);
        return std::to_string(copied.size()) + " sequence(s) set on the " + dir_.to_name +
               " (gap " + std::to_string(opt_.sequence_gap) + ")";
      })) {
    return;
  }
  if (opt_.mirror) {
    if (reverse_mirror_step()) unfence_and_commit();
    return;
  }
  if (!step("stop_stream", [&] {
        drop_subscription(to(), dir_.in_stream);
        undo_.push_back({"stop_stream", [this] {
                           create_subscription(to(), dir_.in_stream, from_as_seen_from_to(),
                                               dir_.in_stream);
                         }});
        return "subscription " + dir_.in_stream + " dropped on the " + dir_.to_name;
      })) {
    return;
  }
  if (!step("start_reverse_stream", [&] {
        std::string what;
        if (!publication_exists(to(), dir_.out_stream)) {
          create_publication(to(), dir_.out_stream, tables_);
          undo_.push_back(
              {"create publication", [this] { drop_publication(to(), dir_.out_stream); }});
          what = "publication " + dir_.out_stream + " created on the " + dir_.to_name + ", ";
        }
        create_subscription(from(), dir_.out_stream, to_as_seen_from_from(), dir_.out_stream);
        undo_.push_back(
            {"create subscription", [this] { drop_subscription(from(), dir_.out_stream); }});
        return what + "subscription " + dir_.out_stream + " created on the " + dir_.from_name +
               " (copy_data = false)";
      })) {
    return;
  }
  unfence_and_commit();
}

// unfence_new_side -> commit
void Switch::unfence_and_commit() {
  if (!step("unfence_new_side", [&] {
        const bool was_fenced = !fenced_tables(to()).empty();
        unfence_tables(to(), tables_);
        if (was_fenced) {
          undo_.push_back({"unfence_new_side", [this] {
                             fence_tables(to(), tables_, route_, dir_.from_name,
                                          opt_.drain_timeout);
                           }});
        }
        return std::string(was_fenced ? "fence removed from the " : "no fence on the ") +
               dir_.to_name;
      })) {
    return;
  }
  step("commit", [&] {
    auto c = fleet_.commit(route_, routing::SetPhase{dir_.commit_phase});
    if (!c.ok) throw std::runtime_error("the fleet did not commit: " + c.error);
    undo_.clear();  // the point of no return
    out_.result = "completed";
    return "phase " + std::string(routing::phase_name(c.state.phase)) + " at epoch " +
           std::to_string(c.state.epoch);
  });
}

void Switch::finalize_steps() {
  const std::string rev = publication_name(route_, migrate::Direction::reverse);
  const std::string fwd = publication_name(route_, migrate::Direction::forward);
  if (opt_.mirror) {
    // No stream to stop: target_only is not a mirrored phase, so the sidecars stop mirroring
    // at the commit; the hold waited until each had replayed its queue on the source.
    step("commit", [&] {
      auto c = fleet_.commit(route_, routing::SetPhase{Phase::target_only});
      if (!c.ok) throw std::runtime_error("the fleet did not commit: " + c.error);
      undo_.clear();
      out_.result = "completed";
      return "phase target_only at epoch " + std::to_string(c.state.epoch) +
             "; the sidecars stop mirroring to the source";
    });
    return;
  }
  if (!step("stop_reverse_stream", [&] {
        drop_subscription(source_, rev);
        undo_.push_back({"stop_reverse_stream", [this, rev] {
                           create_subscription(source_, rev, ep_.target_as_seen_from_source, rev);
                         }});
        return "subscription " + rev + " dropped on the source (its slot on the target too)";
      })) {
    return;
  }
  step("commit", [&] {
    auto c = fleet_.commit(route_, routing::SetPhase{Phase::target_only});
    if (!c.ok) throw std::runtime_error("the fleet did not commit: " + c.error);
    undo_.clear();
    out_.result = "completed";
    return "phase target_only at epoch " + std::to_string(c.state.epoch);
  });
  if (out_.result != "completed") return;
  // Past the commit point: leftovers only cost disk, so a failure here is reported, not undone.
  step("drop_publications", [&] {
    drop_publication(target_, rev);
    drop_publication(source_, fwd);
    return "publications " + rev + " (target) and " + fwd + " (source) dropped";
  });
  out_.result = "completed";
  out_.error.clear();
}

std::string Switch::databases_after_undo() const {
  std::string s =
      "both databases back as before: the " + dir_.from_name + " takes writes (no fence)";
  for (const auto& u : undone_) {
    if (u == "stop_stream")
      s += ", subscription " + dir_.in_stream + " re-created at the current position";
  }
  return s + ", the " + dir_.to_name +
         (opt_.mirror ? " keeps receiving the sidecars' mirrored writes"
                      : " keeps receiving the stream");
}

control::HoldRequest Switch::hold_request(std::string kind) const {
  control::HoldRequest req;
  req.route = route_;
  req.kind = std::move(kind);
  req.actor = opt_.actor;
  req.drain_timeout = opt_.drain_timeout;
  req.deadline = opt_.drain_timeout * 2 + opt_.catch_up_timeout + ms(10000);
  return req;
}

// One state change through the fleet outside the main hold (a hold of its own, then the
// commit): used to enter and to leave the transient phase `cutover`.
void Switch::change_phase(Phase phase, const std::string& why) {
  commit_phase_through_fleet(fleet_, hold_request(std::string(to_string(kind_)) + "_" + why),
                             phase);
}

// Records phase `cutover` before anything changes in the databases, so that an interrupted
// operation is visible in the route state (and the preconditions of the next one refuse).
bool Switch::begin_step() {
  return step("begin", [&] {
    if (current_.phase == Phase::source_only) change_phase(Phase::sync, "sync");
    change_phase(Phase::cutover, "begin");
    undo_.push_back({"begin", [this] { change_phase(dir_.expected, "abort"); }});
    return std::string("phase cutover recorded (was ") +
           std::string(routing::phase_name(current_.phase)) + ")";
  });
}

bool Switch::hold_step() {
  return step("hold", [&] {
    held_at_ = Clock::now();
    auto h = fleet_.hold(hold_request(std::string(to_string(kind_))));
    if (!h.ok) {
      held_at_.reset();
      throw std::runtime_error("the fleet did not hold: " + h.error);
    }
    undo_.push_back({"hold", [this] { fleet_.abort(route_, out_.error); }});
    out_.held_transactions = h.held_transactions;
    return std::to_string(h.members) + " member(s) holding at epoch " + std::to_string(h.epoch);
  });
}

void Switch::finish() {
  if (out_.result == "refused") out_.databases = "nothing was changed";
  cutover_metrics().outcome(route_, to_string(kind_), out_.result).Increment();
  if (held_at_) {
    cutover_metrics().pause_seconds(route_, to_string(kind_)).Observe(out_.pause.count() / 1000.0);
    cutover_metrics().held_transactions(route_).Set(static_cast<double>(out_.held_transactions));
  }
  proxy::log_info("cutover finished",
                  {proxy::f("audit", std::string(to_string(kind_))), proxy::f("route", route_),
                   proxy::f("result", out_.result), proxy::f("summary", out_.summary()),
                   proxy::f("who", opt_.actor)});
}

SwitchOutcome Switch::run() {
  const auto start = Clock::now();
  out_.result = "aborted";
  const bool checked = step("preconditions", [&] {
    preconditions();
    return std::string("ok: phase ") + std::string(routing::phase_name(current_.phase)) +
           (kind_ == SwitchKind::finalize || kind_ == SwitchKind::recover
                ? ""
                : ", " + std::to_string(tables_.size()) + " table(s), " +
                      (opt_.mirror ? std::string("mirror") : "stream " + dir_.in_stream) +
                      " healthy, lag under " + std::to_string(opt_.max_lag.count()) + " ms");
  });
  const bool switches_sides = kind_ == SwitchKind::cutover || kind_ == SwitchKind::rollback;
  if (checked && opt_.dry_run) {
    out_.result = "dry_run";
  } else if (checked && (!switches_sides || begin_step()) && hold_step()) {
    if (kind_ == SwitchKind::finalize) {
      finalize_steps();
    } else if (kind_ == SwitchKind::recover) {
      recover_steps();
    } else {
      switch_steps();
    }
    if (out_.result == "completed") out_.pause = since(*held_at_);
  }
  if (!out_.ok() && !undo_.empty()) {
    undo_all();
    if (out_.databases.empty()) out_.databases = databases_after_undo();
  }
  out_.total = since(start);
  finish();
  return std::move(out_);
}

}  // namespace pgshift::migrate::detail

namespace pgshift::migrate {

std::string_view to_string(SwitchKind k) {
  switch (k) {
    case SwitchKind::cutover:
      return "cutover";
    case SwitchKind::rollback:
      return "rollback";
    case SwitchKind::finalize:
      return "finalize";
    case SwitchKind::recover:
      return "recover";
    case SwitchKind::mirror_start:
      return "mirror-start";
    case SwitchKind::mirror_stop:
      return "mirror-stop";
  }
  return "cutover";
}

std::string SwitchOutcome::summary() const {
  std::string s = std::string(to_string(kind)) + " of route " + route + ": " + result + " in " +
                  std::to_string(total.count()) + " ms (total pause " +
                  std::to_string(pause.count()) + " ms, held transactions " +
                  std::to_string(held_transactions) +
                  ", longest hold <= " + std::to_string(pause.count()) + " ms)";
  if (!error.empty()) s += "; " + error;
  if (!databases.empty()) s += "; " + databases;
  return s;
}

SwitchOutcome run_switch(SwitchKind kind, const std::string& route,
                         const routing::MigrationState& current, const SwitchEndpoints& endpoints,
                         control::Fleet& fleet, const SwitchOptions& options,
                         const StepListener& listener) {
  detail::Switch s(kind, route, current, endpoints, fleet, options, listener);
  return s.run();
}

routing::MigrationState commit_phase_through_fleet(control::Fleet& fleet,
                                                   const control::HoldRequest& req,
                                                   config::Phase phase) {
  auto h = fleet.hold(req);
  if (!h.ok) throw std::runtime_error("the fleet did not hold: " + h.error);
  auto c = fleet.commit(req.route, routing::SetPhase{phase});
  if (!c.ok) {
    fleet.abort(req.route, c.error);
    throw std::runtime_error("the fleet did not commit phase " +
                             std::string(routing::phase_name(phase)) + ": " + c.error);
  }
  return c.state;
}

}  // namespace pgshift::migrate
