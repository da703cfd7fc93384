#include "proxy/migrate/mirror_start.hpp"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "proxy/migrate/step_log.hpp"
#include "proxy/migrate/sync_common.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::migrate {

namespace {

using Clock = std::chrono::steady_clock;
using config::Phase;
using pgclient::quote_literal;

std::chrono::milliseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t);
}

// While the copy runs: pgshift.mirror_copies.heartbeat_at = now() every kMirrorHeartbeat,
// on a connection of its own, so that a coordinator that died is told from a slow copy.
class Heartbeat {
 public:
  Heartbeat(const pgclient::ConnInfo& target, std::string route)
      : thread_([this, target, route = std::move(route)] { run(target, route); }) {}
  ~Heartbeat() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void run(const pgclient::ConnInfo& target, const std::string& route) {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, kMirrorHeartbeat, [this] { return stop_; })) {
      try {
        if (!conn_.ok()) conn_ = pgclient::Connection::connect(target);
        conn_.exec("UPDATE pgshift.mirror_copies SET heartbeat_at = now() WHERE route = $1",
                   {route});
      } catch (const std::exception&) {
        conn_ = {};  // the next beat reconnects; a copy that cannot reach the target fails
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  pgclient::Connection conn_;
  std::thread thread_;  // last: started once the members above exist
};

class MirrorStart {
 public:
  MirrorStart(const std::string& route, const routing::MigrationState& current,
              const SwitchEndpoints& ep, control::Fleet& fleet, const MirrorStartOptions& opt,
              const StepListener& listener)
      : route_(route), current_(current), ep_(ep), fleet_(fleet), opt_(opt), listener_(listener) {
    out_.kind = SwitchKind::mirror_start;
    out_.route = route;
  }

  SwitchOutcome run() {
    const auto start = Clock::now();
    bool ok = steps_.run("preconditions", [&] { return preconditions(); }) &&
              steps_.run("record", [&] { return record(); }) &&
              steps_.run("hold", [&] { return hold(); }) &&
              steps_.run("snapshot", [&] { return snapshot(); }) &&
              steps_.run("commit", [&] { return commit(); }) && copy_all() &&
              steps_.run("copied", [&] { return copied(); });
    if (snapshot_conn_.ok()) {
      try {
        snapshot_conn_.exec("COMMIT");
      } catch (const std::exception&) {
      }
    }
    if (ok) {
      out_.result = "completed";
      out_.databases =
          "mirroring: every transaction committed through pgshift on the source "
          "is replayed on the target";
    } else {
      undo();
    }
    out_.total = since(start);
    proxy::log_info("mirror start ended",
                    {proxy::f("route", route_), proxy::f("result", out_.result),
                     proxy::f("error", out_.error)});
    return out_;
  }

 private:
  std::string preconditions() {
    if (current_.phase != Phase::source_only) {
      throw std::runtime_error(
          "the route is in phase " + std::string(routing::phase_name(current_.phase)) +
          "; the mirror starts from source_only (pgshift sync stop first to start afresh; "
          "if an earlier sync start died during its copy, pgshift ctl recover " +
          route_ + " undoes it)");
    }
    source_ = pgclient::Connection::connect(ep_.source);
    target_ = pgclient::Connection::connect(ep_.target);
    config::Route r;
    r.name = route_;
    r.sync.tables = opt_.tables;
    tables_ = route_tables(source_, r);
    if (tables_.empty()) throw std::runtime_error("the source has no user tables to mirror");
    std::string missing, nonempty;
    for (const auto& t : tables_) {
      auto exists = target_.exec("SELECT to_regclass(" + quote_literal(t.qualified()) + ")");
      if (exists.is_null(0, 0)) {
        missing += (missing.empty() ? "" : ", ") + t.display();
        continue;
      }
      auto any = target_.exec("SELECT EXISTS (SELECT 1 FROM " + t.qualified() + ")");
      if (any.get(0, 0) == "t") nonempty += (nonempty.empty() ? "" : ", ") + t.display();
    }
    if (!missing.empty()) {
      throw std::runtime_error("tables missing on the target: " + missing +
                               " (create them, or run pgshift sync start --copy-schema)");
    }
    if (!nonempty.empty()) {
      throw std::runtime_error("tables on the target are not empty: " + nonempty +
                               " (the initial copy fills them; TRUNCATE them on the target "
                               "first)");
    }
    return std::to_string(tables_.size()) + " tables, target tables exist and are empty";
  }

  std::string record() {
    target_.exec("CREATE SCHEMA IF NOT EXISTS pgshift");
    target_.exec(
        "CREATE TABLE IF NOT EXISTS pgshift.mirror_copies (route text PRIMARY KEY, "
        "started_at timestamptz NOT NULL, copied_at timestamptz, rows bigint)");
    // The coordinator's heartbeat while the copy runs: `pgshift ctl recover` ends a copy whose
    // coordinator died (mirror_recover.cpp) once it is stale.
    target_.exec(
        "ALTER TABLE pgshift.mirror_copies ADD COLUMN IF NOT EXISTS heartbeat_at timestamptz");
    target_.exec("INSERT INTO pgshift.mirror_copies (route, started_at, heartbeat_at) VALUES (" +
                 quote_literal(route_) +
                 ", now(), now()) ON CONFLICT (route) DO UPDATE SET started_at = now(), "
                 "heartbeat_at = now(), copied_at = NULL, rows = NULL");
    recorded_ = true;
    return "pgshift.mirror_copies on the target: copy of route " + route_ + " pending";
  }

  std::string hold() {
    control::HoldRequest req;
    req.route = route_;
    req.kind = "mirror_start";
    req.actor = opt_.actor;
    req.drain_timeout = opt_.drain_timeout;
    req.deadline = opt_.drain_timeout * 2 + std::chrono::milliseconds(10000);
    held_at_ = Clock::now();
    auto h = fleet_.hold(req);
    if (!h.ok) throw std::runtime_error("the fleet did not hold: " + h.error);
    held_ = true;
    out_.held_transactions = h.held_transactions;
    return std::to_string(h.members) + " member(s) hold; open transactions drained";
  }

  std::string snapshot() {
    snapshot_conn_ = pgclient::Connection::connect(ep_.source);
    snapshot_conn_.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
    snapshot_id_ = std::string(snapshot_conn_.exec("SELECT pg_export_snapshot()").get(0, 0));
    return "snapshot " + snapshot_id_ + " exported on the source";
  }

  std::string commit() {
    auto c = fleet_.commit(route_, routing::SetPhase{Phase::sync});
    held_ = false;
    out_.pause = since(held_at_);
    if (!c.ok) {
      fleet_.abort(route_, c.error);
      throw std::runtime_error("the fleet did not commit phase sync: " + c.error);
    }
    committed_ = true;
    return "phase sync at epoch " + std::to_string(c.state.epoch) +
           ": every sidecar mirrors from here on";
  }

  // One table: COPY out of the snapshot, into the target.
  std::uint64_t copy_table(const TableRef& t) {
    auto src = pgclient::Connection::connect(ep_.source);
    auto dst = pgclient::Connection::connect(ep_.target);
    try {
      // Foreign keys and user triggers do not fire for the copy, as in logical replication's
      // apply (needs superuser or rds_superuser; without it they fire: copy parents first).
      dst.exec("SET session_replication_role = replica");
    } catch (const std::exception&) {
    }
    src.exec("BEGIN ISOLATION LEVEL REPEATABLE READ");
    src.exec("SET TRANSACTION SNAPSHOT " + quote_literal(snapshot_id_));
    dst.copy_in_start("COPY " + t.qualified() + " FROM STDIN (FORMAT binary)");
    src.copy_out("COPY " + t.qualified() + " TO STDOUT (FORMAT binary)",
                 [&](std::string_view chunk) { dst.put_copy_data(chunk); });
    auto r = dst.copy_in_end();
    src.exec("COMMIT");
    return r.affected_rows();
  }

  bool copy_all() {
    std::mutex mu;
    std::size_t next = 0;
    std::atomic<bool> failed{false};
    auto worker = [&] {
      for (;;) {
        std::size_t i;
        {
          std::lock_guard lock(mu);
          if (next >= tables_.size() || failed) return;
          i = next++;
        }
        const TableRef& t = tables_[i];
        bool ok = steps_.run("copy " + t.display(), [&] {
          const auto t0 = Clock::now();
          const std::uint64_t n = copy_table(t);
          {
            std::lock_guard lock(mu);
            rows_ += n;
            copied_tables_.push_back(t);
          }
          return std::to_string(n) + " rows in " + std::to_string(since(t0).count()) + " ms";
        });
        if (!ok) failed = true;
      }
    };
    const int n = std::max(1, std::min<int>(opt_.copy_workers, static_cast<int>(tables_.size())));
    Heartbeat beat(ep_.target, route_);
    std::vector<std::thread> threads;
    for (int k = 1; k < n; ++k) threads.emplace_back(worker);
    worker();
    for (auto& t : threads) t.join();
    return !failed;
  }

  std::string copied() {
    target_.exec("UPDATE pgshift.mirror_copies SET copied_at = now(), rows = " +
                 std::to_string(rows_) + " WHERE route = " + quote_literal(route_));
    return std::to_string(rows_) + " rows in " + std::to_string(tables_.size()) +
           " tables copied; the sidecars replay the queued transactions now";
  }

  void undo() {
    std::string left;
    if (held_) fleet_.abort(route_, out_.error);
    if (committed_) {
      bool off = steps_.run("undo commit", [&] {
        commit_phase_through_fleet(fleet_, route_, "mirror_start_undo", opt_.actor,
                                   control::HoldRequest{}.drain_timeout, Phase::source_only);
        return std::string("phase source_only: mirroring is off");
      });
      if (!off) left += "the route is still in phase sync (mirroring); ";
      steps_.run("undo copy", [&] {
        for (const auto& t : copied_tables_) target_.exec("TRUNCATE " + t.qualified());
        return "emptied " + std::to_string(copied_tables_.size()) + " target tables";
      });
    }
    if (recorded_) {
      try {
        target_.exec("DELETE FROM pgshift.mirror_copies WHERE route = " + quote_literal(route_));
      } catch (const std::exception& e) {
        left += "pgshift.mirror_copies still has a pending row (" + std::string(e.what()) + "); ";
      }
    }
    out_.databases = left.empty() ? "both databases are as they were (mirroring is off)"
                                  : "NOT fully undone: " + left;
  }

  const std::string route_;
  const routing::MigrationState current_;
  const SwitchEndpoints& ep_;
  control::Fleet& fleet_;
  const MirrorStartOptions& opt_;
  const StepListener& listener_;
  SwitchOutcome out_;
  pgclient::Connection source_, target_, snapshot_conn_;
  std::vector<TableRef> tables_, copied_tables_;
  std::string snapshot_id_;
  std::uint64_t rows_ = 0;
  bool recorded_ = false, held_ = false, committed_ = false;
  Clock::time_point held_at_{};
  StepLog steps_{out_, listener_};  // after out_
};

}  // namespace

routing::MigrationState commit_phase_through_fleet(control::Fleet& fleet, const std::string& route,
                                                   const std::string& kind,
                                                   const std::string& actor,
                                                   std::chrono::milliseconds drain_timeout,
                                                   config::Phase phase) {
  control::HoldRequest req;
  req.route = route;
  req.kind = kind;
  req.actor = actor;
  req.drain_timeout = drain_timeout;
  return commit_phase_through_fleet(fleet, req, phase);
}

SwitchOutcome run_mirror_start(const std::string& route, const routing::MigrationState& current,
                               const SwitchEndpoints& endpoints, control::Fleet& fleet,
                               const MirrorStartOptions& options, const StepListener& listener) {
  return MirrorStart(route, current, endpoints, fleet, options, listener).run();
}

SwitchOutcome run_mirror_stop(const std::string& route, const routing::MigrationState& current,
                              control::Fleet& fleet, const MirrorStartOptions& options,
                              const StepListener& listener) {
  SwitchOutcome out;
  out.kind = SwitchKind::mirror_stop;
  out.route = route;
  const auto t0 = Clock::now();
  StepRecord rec;
  rec.name = "commit";
  if (current.phase != Phase::sync) {
    rec.status = "refused";
    rec.detail = "the route is in phase " + std::string(routing::phase_name(current.phase)) +
                 "; the mirror stops from phase sync only";
    out.result = "refused";
    out.error = rec.detail;
  } else {
    try {
      commit_phase_through_fleet(fleet, route, "mirror_stop", options.actor, options.drain_timeout,
                                 Phase::source_only);
      rec.status = "ok";
      rec.detail = "phase source_only: no transaction is mirrored from here on";
      out.result = "completed";
      out.databases = "the target keeps what was mirrored; verify compares it";
    } catch (const std::exception& e) {
      rec.status = "failed";
      rec.detail = "the fleet did not move the route to source_only: " + std::string(e.what());
      out.result = "aborted";
      out.error = rec.detail;
      out.databases = "unchanged: still mirroring";
    }
  }
  rec.duration = since(t0);
  out.steps.push_back(rec);
  if (listener) listener(rec);
  out.total = since(t0);
  return out;
}

}  // namespace pgshift::migrate
