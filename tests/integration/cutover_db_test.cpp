// Cutover and rollback at the database level (issue 13), without a proxy: the fence, the
// coordinator's steps with an in-test fleet, refusals and aborts. cutover_test.cpp runs the
// same protocol through pgshift under load.
#include "proxy/migrate/cutover_db.hpp"

#include <gtest/gtest.h>

#include <future>

#include "proxy/migrate/names.hpp"
#include "tests/integration/cutover_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using migrate::SwitchKind;
using pgclient::Connection;

// A fleet of no sidecars: records the calls and keeps the route state the way the control
// plane does (one validated change per commit).
struct TestFleet : control::Fleet {
  routing::MigrationState state = [] {
    routing::MigrationState st;
    st.phase = config::Phase::sync;
    return st;
  }();
  std::vector<std::string> calls;
  control::HoldResult hold(const control::HoldRequest& r) override {
    calls.push_back("hold " + r.kind);
    control::HoldResult h;
    h.ok = true;
    h.epoch = state.epoch;
    h.members = 1;
    return h;
  }
  control::CommitResult commit(const std::string&, const routing::StateChange& c) override {
    calls.push_back("commit");
    auto next = routing::apply(state, c, 2);
    control::CommitResult r;
    if (!next) {
      r.error = "invalid transition";
      return r;
    }
    state = *next;
    r.ok = true;
    r.state = state;
    return r;
  }
  void abort(const std::string&, std::string_view) override { calls.push_back("abort"); }
};

class CutoverDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    servers().reset();
    options_.skip_verify = true;
    options_.actor = "cutover_db_test";
  }
  static CutoverServers& servers() { return cutover_servers(); }
  migrate::SwitchOutcome run(SwitchKind kind, const migrate::StepListener& l = {}) {
    auto out =
        migrate::run_switch(kind, kRoute, fleet_.state, servers().endpoints(), fleet_, options_, l);
    for (const auto& s : out.steps) {
      log_ += s.name + " " + s.status + " " + s.detail + "\n";
    }
    return out;
  }
  bool fenced_cluster(const PgCluster& c) {
    auto conn = Connection::connect(servers().conninfo(c));
    return !migrate::fenced_tables(conn).empty();
  }
  void insert(const PgCluster& c, std::int64_t id) {
    c.exec("INSERT INTO ledger VALUES (" + std::to_string(id) + ", 'test')", kDb);
  }
  TestFleet fleet_;
  migrate::SwitchOptions options_;
  std::string log_;
};

TEST_F(CutoverDbTest, FenceStopsSuperusersButNotTheApplyWorker) {
  auto& s = servers();
  auto target = Connection::connect(s.conninfo(s.target));
  auto tables = migrate::publication_tables(
      *std::make_unique<Connection>(Connection::connect(s.conninfo(s.source))), "pgshift_app");
  ASSERT_EQ(tables.size(), 6u);
  migrate::fence_tables(target, tables, kRoute, "source", 5s);
  EXPECT_EQ(migrate::fenced_tables(target), tables);

  // A superuser writing directly on the fenced side gets 25006, for every kind of write.
  PgConnection direct(s.libpq(s.target));
  for (const char* sql :
       {"INSERT INTO ledger VALUES (-1, 'direct')", "UPDATE ledger SET writer = 'x'",
        "DELETE FROM ledger", "TRUNCATE orders"}) {
    try {
      direct.exec(sql);
      ADD_FAILURE() << sql << " succeeded on a fenced table";
    } catch (const PgError& e) {
      EXPECT_EQ(e.sqlstate(), "25006") << sql << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("moved to the source"), std::string::npos) << e.what();
    }
  }
  // Reads still work, and the replication stream still applies on the fenced side.
  EXPECT_EQ(direct.scalar("SELECT count(*) FROM ledger"), "0");
  insert(s.source, 42);
  wait_caught_up(s.source, s.target, "source");
  EXPECT_EQ(ledger_ids(s.target), std::set<std::int64_t>{42});

  migrate::unfence_tables(target, tables);
  EXPECT_TRUE(migrate::fenced_tables(target).empty());
  direct.exec("UPDATE ledger SET writer = 'test' WHERE id = 42");  // writable again
}

TEST_F(CutoverDbTest, FenceWaitsOutAnOpenWriterAndGivesUpAtTheTimeoutWithNothingFenced) {
  auto& s = servers();
  auto source = Connection::connect(s.conninfo(s.source));
  auto tables = migrate::publication_tables(source, "pgshift_app");
  PgConnection writer(s.libpq(s.source));
  writer.exec("BEGIN; INSERT INTO ledger VALUES (7, 'open')");
  try {
    migrate::fence_tables(source, tables, kRoute, "target", 300ms);
    FAIL() << "the fence did not wait for the open writer";
  } catch (const pgclient::Error& e) {
    EXPECT_EQ(e.sqlstate(), "55P03") << e.what();
  }
  EXPECT_TRUE(migrate::fenced_tables(source).empty());
  // The writer was never disturbed: it commits; then the fence goes through.
  writer.exec("INSERT INTO ledger VALUES (8, 'open'); COMMIT");
  auto stats = migrate::fence_tables(source, tables, kRoute, "target", 5s);
  EXPECT_GE(stats.attempts, 1);
  EXPECT_THROW(writer.exec("INSERT INTO ledger VALUES (9, 'late')"), PgError);
  EXPECT_EQ(ledger_ids(s.source), (std::set<std::int64_t>{7, 8}));
}

TEST_F(CutoverDbTest, CutoverRollbackCyclesLoseNothingAndCarrySequences) {
  auto& s = servers();
  std::int64_t id = 1;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    for (int i = 0; i < 20; ++i) insert(s.source, id++);
    s.source.exec(
        "INSERT INTO orders (note) SELECT 'src' FROM generate_series(1, 5);"
        "SELECT nextval('standalone_seq')",
        kDb);
    auto cut = run(SwitchKind::cutover);
    ASSERT_EQ(cut.result, "completed") << cut.summary() << "\n" << log_;
    EXPECT_EQ(fleet_.state.phase, config::Phase::target_primary);
    EXPECT_EQ(table_fingerprints(s.source), table_fingerprints(s.target));
    // The source is fenced; the target takes writes, serial ids included, and they flow back.
    EXPECT_THROW(s.source.exec("INSERT INTO ledger VALUES (-5, 'stale')", kDb), PgError);
    for (int i = 0; i < 20; ++i) insert(s.target, id++);
    s.target.exec("INSERT INTO orders (note) SELECT 'tgt' FROM generate_series(1, 5)", kDb);
    EXPECT_GT(std::stoll(s.target.exec("SELECT nextval('standalone_seq')", kDb).scalar()),
              std::stoll(s.source.exec("SELECT last_value FROM standalone_seq", kDb).scalar()));
    wait_caught_up(s.target, s.source, "target");
    EXPECT_EQ(table_fingerprints(s.source), table_fingerprints(s.target));

    auto back = run(SwitchKind::rollback);
    ASSERT_EQ(back.result, "completed") << back.summary() << "\n" << log_;
    EXPECT_EQ(fleet_.state.phase, config::Phase::sync);
    EXPECT_THROW(s.target.exec("INSERT INTO ledger VALUES (-6, 'stale')", kDb), PgError);
    s.source.exec("INSERT INTO orders (note) VALUES ('after rollback')", kDb);  // no dup key
    insert(s.source, id++);
    wait_caught_up(s.source, s.target, "source");
    EXPECT_EQ(table_fingerprints(s.source), table_fingerprints(s.target));
    EXPECT_EQ(ledger_ids(s.source).size(), static_cast<std::size_t>(id - 1));
  }
  EXPECT_EQ(std::count(fleet_.calls.begin(), fleet_.calls.end(), "abort"), 0);
}

TEST_F(CutoverDbTest, LagAboveTheLimitIsRefusedAndNothingChanges) {
  auto& s = servers();
  // The apply worker cannot update pgshift.heartbeat on the target while this lock is held.
  PgConnection blocker(s.libpq(s.target));
  blocker.exec("BEGIN; LOCK TABLE pgshift.heartbeat IN SHARE MODE");
  options_.max_lag = 300ms;
  auto out = run(SwitchKind::cutover);
  EXPECT_EQ(out.result, "refused") << log_;
  EXPECT_NE(out.error.find("lag above --max-lag-ms 300"), std::string::npos) << out.error;
  EXPECT_EQ(out.databases, "nothing was changed");
  EXPECT_TRUE(fleet_.calls.empty());
  blocker.exec("ROLLBACK");
  auto target = Connection::connect(s.conninfo(s.target));
  EXPECT_TRUE(migrate::subscription_health(target, "pgshift_app").worker_running);
  auto source = Connection::connect(s.conninfo(s.source));
  EXPECT_TRUE(migrate::fenced_tables(source).empty());
  insert(s.source, 1);  // still writable
}

TEST_F(CutoverDbTest, CatchUpTimeoutAbortsUnfencesAndKeepsTheStream) {
  auto& s = servers();
  PgConnection blocker(s.libpq(s.target));
  options_.catch_up_timeout = 500ms;
  auto out = run(SwitchKind::cutover, [&](const migrate::StepRecord& r) {
    if (r.name == "fence" && r.status == "ok") {
      blocker.exec("BEGIN; LOCK TABLE pgshift.heartbeat IN SHARE MODE");
    }
  });
  blocker.exec("ROLLBACK");
  EXPECT_EQ(out.result, "aborted") << log_;
  EXPECT_NE(out.error.find("catch_up"), std::string::npos) << out.error;
  EXPECT_EQ(fleet_.state.phase, config::Phase::sync);
  EXPECT_EQ(fleet_.calls, (std::vector<std::string>{"hold cutover_begin", "commit", "hold cutover",
                                                    "abort", "hold cutover_abort", "commit"}));
  auto source = Connection::connect(s.conninfo(s.source));
  EXPECT_TRUE(migrate::fenced_tables(source).empty()) << log_;
  insert(s.source, 77);
  wait_caught_up(s.source, s.target, "source");
  EXPECT_EQ(ledger_ids(s.target), std::set<std::int64_t>{77});
}

// The coordinator "dies" right after a step (the listener throws out of run_switch, so no
// undo runs); recover must bring both databases back to where the operation started, after
// which the route switches normally.
struct CoordinatorDied {};

TEST_F(CutoverDbTest, RecoverEndsAnOperationWhoseCoordinatorDiedAtAnyStep) {
  auto& s = servers();
  struct Case {
    SwitchKind kind;
    std::string dies_after;
  };
  const std::vector<Case> cases = {{SwitchKind::cutover, "begin"},
                                   {SwitchKind::cutover, "fence"},
                                   {SwitchKind::cutover, "stop_stream"},
                                   {SwitchKind::cutover, "start_reverse_stream"},
                                   {SwitchKind::cutover, "unfence_new_side"},
                                   {SwitchKind::rollback, "stop_stream"},
                                   {SwitchKind::rollback, "start_reverse_stream"}};
  std::int64_t id = 100;
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(migrate::to_string(c.kind)) + " dies after " + c.dies_after);
    servers().reset();
    fleet_.state = {};
    fleet_.state.phase = config::Phase::sync;
    if (c.kind == SwitchKind::rollback) {
      ASSERT_EQ(run(SwitchKind::cutover).result, "completed");
    }
    const PgCluster& old_side = c.kind == SwitchKind::rollback ? s.target : s.source;
    const PgCluster& new_side = c.kind == SwitchKind::rollback ? s.source : s.target;
    const std::string old_name = c.kind == SwitchKind::rollback ? "target" : "source";
    const auto phase_before = fleet_.state.phase;
    insert(old_side, id++);
    EXPECT_THROW(run(c.kind,
                     [&](const migrate::StepRecord& r) {
                       if (r.name == c.dies_after) throw CoordinatorDied{};
                     }),
                 CoordinatorDied);
    ASSERT_EQ(fleet_.state.phase, config::Phase::cutover);

    auto refused = run(c.kind);  // a new operation refuses while one is unfinished
    EXPECT_EQ(refused.result, "refused");
    EXPECT_NE(refused.error.find("recover"), std::string::npos) << refused.error;

    auto rec = run(SwitchKind::recover);
    ASSERT_EQ(rec.result, "completed") << rec.summary() << "\n" << log_;
    EXPECT_EQ(fleet_.state.phase, phase_before);
    EXPECT_FALSE(fenced_cluster(old_side));
    EXPECT_TRUE(fenced_cluster(new_side));
    insert(old_side, id++);
    wait_caught_up(old_side, new_side, old_name);
    EXPECT_EQ(table_fingerprints(s.source), table_fingerprints(s.target));
    // And the route switches normally afterwards.
    auto again = run(c.kind);
    EXPECT_EQ(again.result, "completed") << again.summary() << "\n" << log_;
  }
}

TEST_F(CutoverDbTest, ARouteWhosePhaseNeverRecordedSyncIsCutOverThroughSync) {
  fleet_.state.phase = config::Phase::source_only;  // sync started, phase not recorded
  auto out = run(SwitchKind::cutover);
  ASSERT_EQ(out.result, "completed") << log_;
  EXPECT_EQ(fleet_.state.phase, config::Phase::target_primary);
  EXPECT_EQ(fleet_.calls.at(0), "hold cutover_sync");
  // Rollback from there returns to sync, not source_only.
  ASSERT_EQ(run(SwitchKind::rollback).result, "completed") << log_;
  EXPECT_EQ(fleet_.state.phase, config::Phase::sync);
}

// A failure after the stream was dropped: every step done so far is undone, the stream is
// re-created at the current position, and nothing written before or after is lost.
TEST_F(CutoverDbTest, AFailureAfterTheStreamWasDroppedUndoesEverythingAndLosesNothing) {
  auto& s = servers();
  insert(s.source, 1);
  // A leftover slot with the reverse stream's name makes CREATE SUBSCRIPTION fail.
  s.target.exec("SELECT pg_create_logical_replication_slot('pgshift_app_rev', 'pgoutput')", kDb);
  auto out = run(SwitchKind::cutover);
  s.target.exec("SELECT pg_drop_replication_slot('pgshift_app_rev')", kDb);
  EXPECT_EQ(out.result, "aborted") << log_;
  EXPECT_NE(out.error.find("start_reverse_stream"), std::string::npos) << out.error;
  for (const char* undo :
       {"undo create publication", "undo stop_stream", "undo fence", "undo hold", "undo begin"}) {
    EXPECT_NE(log_.find(std::string(undo) + " ok"), std::string::npos) << undo << "\n" << log_;
  }
  EXPECT_NE(out.databases.find("re-created at the current position"), std::string::npos)
      << out.databases;
  EXPECT_EQ(fleet_.state.phase, config::Phase::sync);
  EXPECT_FALSE(fenced_cluster(s.source));
  EXPECT_EQ(s.source.exec("SELECT count(*) FROM pg_subscription", kDb).scalar(), "0");
  EXPECT_EQ(s.target.exec("SELECT count(*) FROM pg_publication", kDb).scalar(), "0");
  wait_stream_ready(s.target, "pgshift_app");
  insert(s.source, 2);
  wait_caught_up(s.source, s.target, "source");
  EXPECT_EQ(ledger_ids(s.target), (std::set<std::int64_t>{1, 2}));
  EXPECT_EQ(run(SwitchKind::cutover).result, "completed") << log_;
}

TEST_F(CutoverDbTest, DryRunChecksOnlyAndVerifyIsRequiredUnlessSkipped) {
  options_.dry_run = true;
  auto out = run(SwitchKind::cutover);
  EXPECT_EQ(out.result, "dry_run") << log_;
  EXPECT_EQ(out.steps.size(), 1u);
  EXPECT_TRUE(fleet_.calls.empty());
  options_.skip_verify = false;
  out = run(SwitchKind::cutover);
  EXPECT_EQ(out.result, "refused");
  EXPECT_NE(out.error.find("verify"), std::string::npos) << out.error;
  // An unreachable side refuses too, and says which.
  auto unreachable = servers().endpoints();
  unreachable.target.port = 1;
  out =
      migrate::run_switch(SwitchKind::cutover, kRoute, fleet_.state, unreachable, fleet_, options_);
  EXPECT_EQ(out.result, "refused");
  EXPECT_NE(out.error.find("could not connect to 127.0.0.1:1/app"), std::string::npos) << out.error;
  EXPECT_EQ(out.databases, "nothing was changed");
  EXPECT_TRUE(fleet_.calls.empty());
  // Rollback needs a cutover first.
  out = run(SwitchKind::rollback);
  EXPECT_EQ(out.result, "refused");
  EXPECT_NE(out.error.find("needs phase target_primary"), std::string::npos) << out.error;
}

}  // namespace
}  // namespace pgshift::test
