// Cutover and rollback through pgshift (issue 13): a ledger client writes unique ids through
// the sidecar while pgbench TPC-B runs through it too; `pgshift ctl cutover` / `rollback`
// switch the route several times. Every acknowledged id must be on the new side at once and
// on the old side through the reverse stream, with no client error and equal tables after
// each switch. The database steps alone are in cutover_db_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <sstream>

#include "proxy/migrate/cutover_db.hpp"
#include "tests/integration/cutover_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kInitialState =
    R"({"version": 1, "routes": {"app": {"phase": "sync", "read_percent_bp": 0, "epoch": 1}}})";

class CutoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    servers().reset();
    ConfigSpec spec;
    RouteSpec route{.name = kRoute,
                    .client_database = kDb,
                    .source = upstream_of(servers().source, {}, kDb),
                    .target = upstream_of(servers().target, {}, kDb),
                    .pool_mode = "transaction",
                    .pool_size = 12};
    route.extra_yaml = "cutover:\n  sequence_gap: 500\n";
    spec.routes.push_back(route);
    options_ = PgshiftOptions{.config_yaml = spec.to_yaml(),
                              .users = users_file_text({{"app", "app-pw"}}),
                              .files = {{"pgshift-state.json", kInitialState}}};
    proxy_ = std::make_unique<PgshiftProcess>(options_);
  }
  static CutoverServers& servers() { return cutover_servers(); }
  std::string client() const { return proxy_->conninfo("app", "app-pw", kDb); }

  // `pgshift ctl KIND app ARGS...`, the real command line.
  CommandResult ctl(const std::string& kind, std::vector<std::string> args = {}) {
    args.insert(args.begin(), {kind, kRoute});
    return run_ctl(*proxy_, std::move(args));
  }

  static bool fenced(const PgCluster& c) {
    auto conn = pgclient::Connection::connect(app_conninfo(c));
    return !migrate::fenced_tables(conn).empty();
  }

  PgshiftOptions options_;
  std::unique_ptr<PgshiftProcess> proxy_;
};

// Waits until the writers have acknowledged `more` ids beyond what they had.
void wait_for_progress(const std::vector<LedgerWriter*>& writers, std::int64_t more) {
  std::int64_t start = 0;
  for (auto* w : writers) start += w->count();
  ASSERT_TRUE(wait_until(
      [&] {
        std::int64_t n = 0;
        for (auto* w : writers) n += w->count();
        return n >= start + more;
      },
      30s, "ledger progress"));
}

std::set<std::int64_t> acknowledged(const std::vector<LedgerWriter*>& writers) {
  std::set<std::int64_t> all;
  for (auto* w : writers) {
    auto ids = w->acknowledged();
    all.insert(ids.begin(), ids.end());
  }
  return all;
}

// The subscriber's log lines about logical replication errors, for failure messages.
std::string replication_errors(const PgCluster& c) {
  std::string out;
  std::istringstream in(c.log());
  for (std::string line; std::getline(in, line);) {
    if (line.find("ERROR") != std::string::npos ||
        line.find("logical replication") != std::string::npos) {
      out += line + "\n";
    }
  }
  return "\n--- " + c.name() + " log (replication) ---\n" + out;
}

TEST_F(CutoverTest, SwitchesUnderLoadLoseNoAcknowledgedWriteInEitherDirection) {
  auto& s = servers();
  PgConnection app(client());
  for (int i = 0; i < 10; ++i) app.exec("INSERT INTO orders (note) VALUES ('before')");
  Process pgbench(ProcessOptions{
      // Rate-limited: the apply workers must keep up on a loaded CI machine; the point here
      // is losing nothing under concurrent load, not throughput (scripts/bench.sh).
      .argv = {pg_tool("pgbench").string(), "-n", "-c", "4", "-j", "2", "-T", "25", "-R", "300",
               client()},
      .merge_output = true});
  LedgerWriter w1(client(), 1'000'000'000), w2(client(), 2'000'000'000);
  const std::vector<LedgerWriter*> writers = {&w1, &w2};
  wait_for_progress(writers, 50);

  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // The lag bound is loose here: this test is about losing nothing under load on a shared
    // CI machine, where the apply worker may run behind by a second; the refusal itself is
    // tested below.
    auto cut = ctl("cutover", {"--skip-verify", "--max-lag-ms", "3000"});
    ASSERT_TRUE(cut.success()) << cut.describe() << replication_errors(s.target);
    std::cout << cut.out;
    for (const char* step : {"preconditions", "hold", "drain", "fence", "catch_up", "sequences",
                             "stop_stream", "start_reverse_stream", "commit"}) {
      EXPECT_NE(cut.out.find(step), std::string::npos) << step << "\n" << cut.out;
    }
    EXPECT_NE(cut.out.find("cutover of route app: completed"), std::string::npos) << cut.out;
    // Everything acknowledged so far is on the target already (it is authoritative now).
    auto acked = acknowledged(writers);
    EXPECT_EQ(missing_on(s.target, acked), std::vector<std::int64_t>{});
    // A writer that bypasses pgshift cannot write to the old side.
    try {
      s.source.exec("INSERT INTO ledger VALUES (-1, 'direct')", kDb);
      ADD_FAILURE() << "a direct write to the fenced source succeeded";
    } catch (const PgError& e) {
      EXPECT_EQ(e.sqlstate(), "25006") << e.what();
    }
    // A serial id right after the cutover: the sequence was carried over.
    EXPECT_NO_THROW(app.exec("INSERT INTO orders (note) VALUES ('after cutover')"));
    wait_for_progress(writers, 50);
    // Writes after the cutover are on the target and come back to the source.
    acked = acknowledged(writers);
    EXPECT_EQ(missing_on(s.target, acked), std::vector<std::int64_t>{});
    wait_caught_up(s.target, s.source, "target");
    EXPECT_EQ(missing_on(s.source, acked), std::vector<std::int64_t>{});

    auto back = ctl("rollback", {"--skip-verify", "--max-lag-ms", "3000"});
    ASSERT_TRUE(back.success()) << back.describe() << replication_errors(s.source);
    std::cout << back.out;
    EXPECT_NE(back.out.find("rollback of route app: completed"), std::string::npos) << back.out;
    acked = acknowledged(writers);
    EXPECT_EQ(missing_on(s.source, acked), std::vector<std::int64_t>{});
    EXPECT_TRUE(fenced(s.target));
    EXPECT_FALSE(fenced(s.source));
    EXPECT_NO_THROW(app.exec("INSERT INTO orders (note) VALUES ('after rollback')"));
    wait_for_progress(writers, 50);
  }
  w1.stop();
  w2.stop();
  EXPECT_EQ(w1.errors(), std::vector<std::string>{});
  EXPECT_EQ(w2.errors(), std::vector<std::string>{});
  const auto status = pgbench.wait();
  EXPECT_TRUE(status.success()) << pgbench.stdout_text();
  EXPECT_NE(pgbench.stdout_text().find("number of failed transactions: 0"), std::string::npos)
      << pgbench.stdout_text();
  wait_caught_up(s.source, s.target, "source");
  EXPECT_EQ(table_fingerprints(s.source), table_fingerprints(s.target));
  const auto acked = acknowledged(writers);
  EXPECT_EQ(missing_on(s.source, acked), std::vector<std::int64_t>{});
  EXPECT_GT(acked.size(), 300u);
}

TEST_F(CutoverTest, LagAboveTheLimitIsRefusedWithTheReasonAndChangesNothing) {
  auto& s = servers();
  PgConnection blocker(s.libpq(s.target));
  blocker.exec("BEGIN; LOCK TABLE pgshift.heartbeat IN SHARE MODE");
  auto r = ctl("cutover", {"--skip-verify", "--max-lag-ms", "200"});
  blocker.exec("ROLLBACK");
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.out.find("refused"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lag above --max-lag-ms 200"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("nothing was changed"), std::string::npos) << r.out;
  EXPECT_FALSE(fenced(s.source));
  PgConnection app(client());
  app.exec("INSERT INTO ledger VALUES (5, 'after refusal')");
  EXPECT_EQ(ledger_ids(s.source), std::set<std::int64_t>{5});
  auto route =
      run_command({pgshift_binary().string(), "ctl", "--url",
                   "http://127.0.0.1:" + std::to_string(proxy_->admin_port()), "--token-file",
                   proxy_->admin_token_file().string(), "--json", "route", kRoute});
  EXPECT_NE(route.out.find("\"phase\":\"sync\""), std::string::npos) << route.out;
}

// A second sidecar that did not take part in the switch (file mode, sharing the state file
// but not re-reading it until the fence tells it to) still routes writes to the side the
// route left. The fence refuses them, so no write lands there; the sidecar re-reads the
// state and re-runs an autocommit statement on the new side (exactly once: ledger.id is the
// primary key), and answers a write in the middle of a transaction with 40001.
TEST_F(CutoverTest, AStaleSidecarReRunsItsFencedWriteOnTheNewSideOrAsksForARetry) {
  auto& s = servers();
  PgshiftOptions stale_options = options_;
  const std::string own = "\"{{dir}}/pgshift-state.json\"";
  const auto at = stale_options.config_yaml.find(own);
  ASSERT_NE(at, std::string::npos) << stale_options.config_yaml;
  stale_options.config_yaml.replace(at, own.size(),
                                    "\"" + (proxy_->dir() / "pgshift-state.json").string() + "\"");
  stale_options.files.clear();  // the state file is the first sidecar's
  PgshiftProcess stale(stale_options);
  auto stale_route = [&] {
    return run_command({pgshift_binary().string(), "ctl", "--url",
                        "http://127.0.0.1:" + std::to_string(stale.admin_port()), "--token-file",
                        stale.admin_token_file().string(), "--json", "route", kRoute})
        .out;
  };
  PgConnection through_stale(stale.conninfo("app", "app-pw", kDb));
  through_stale.exec("INSERT INTO ledger VALUES (1, 'stale before')");
  // Only the fence's 25006 is taken for the fence: a read-only transaction's is relayed.
  through_stale.exec("BEGIN READ ONLY");
  try {
    through_stale.exec("INSERT INTO ledger VALUES (-2, 'read only')");
    ADD_FAILURE() << "a read-only transaction wrote";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "25006") << e.what();
  }
  through_stale.exec("ROLLBACK");
  ASSERT_TRUE(ctl("cutover", {"--skip-verify"}).success());
  ASSERT_NE(stale_route().find("\"phase\":\"sync\""), std::string::npos) << stale_route();

  // Autocommit: the fence refuses it on the source, the sidecar re-runs it on the target.
  through_stale.exec("INSERT INTO ledger VALUES (2, 'stale after, re-run')");
  EXPECT_EQ(ledger_ids(s.target), (std::set<std::int64_t>{1, 2}));
  EXPECT_NE(stale_route().find("\"phase\":\"target_primary\""), std::string::npos) << stale_route();
  EXPECT_NE(stale.log().find("runs again on the new side"), std::string::npos) << stale.log();
  PgConnection through_switched(client());
  through_switched.exec("INSERT INTO ledger VALUES (3, 'switched')");
  wait_caught_up(s.target, s.source, "target");
  EXPECT_EQ(ledger_ids(s.target), (std::set<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(ledger_ids(s.source), (std::set<std::int64_t>{1, 2, 3}));

  // The stale sidecar misses the rollback: a write after a read in its transaction meets
  // the target's fence and the client is asked to retry the whole transaction.
  ASSERT_TRUE(ctl("rollback", {"--skip-verify"}).success());
  through_stale.exec("BEGIN");
  through_stale.exec("SELECT count(*) FROM ledger");
  try {
    through_stale.exec("INSERT INTO ledger VALUES (4, 'stale in a transaction')");
    ADD_FAILURE() << "a stale sidecar wrote to the fenced target";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "40001") << e.what();
    EXPECT_NE(std::string(e.what()).find(
                  "pgshift: route app moved to the source during this transaction; retry it"),
              std::string::npos)
        << e.what();
  }
  through_stale.exec("ROLLBACK");
  // The retry goes to the source: the error made the sidecar re-read the state.
  through_stale.exec("BEGIN");
  through_stale.exec("SELECT count(*) FROM ledger");
  through_stale.exec("INSERT INTO ledger VALUES (4, 'stale retried')");
  through_stale.exec("COMMIT");
  EXPECT_EQ(ledger_ids(s.source), (std::set<std::int64_t>{1, 2, 3, 4}));
  wait_caught_up(s.source, s.target, "source");
  EXPECT_EQ(ledger_ids(s.target), (std::set<std::int64_t>{1, 2, 3, 4}));
}

// Two sidecars sharing the control database (the target's, control plane of issue 10): a
// cutover coordinated by one moves both, a rollback coordinated by the other moves both
// back, and the clients of both lose nothing and see no error.
TEST_F(CutoverTest, TwoSidecarsOnOneControlDatabaseSwitchTogether) {
  auto& s = servers();
  proxy_.reset();
  PgshiftOptions fleet_options = options_;
  const auto at = fleet_options.config_yaml.find("control: file");
  ASSERT_NE(at, std::string::npos) << fleet_options.config_yaml;
  fleet_options.config_yaml.replace(at, 13, "control: {poll_ms: 250}");
  proxy_ = std::make_unique<PgshiftProcess>(fleet_options);
  PgshiftProcess second(fleet_options);
  const std::string via_second = second.conninfo("app", "app-pw", kDb);
  LedgerWriter w1(client(), 3'000'000'000), w2(via_second, 4'000'000'000);
  const std::vector<LedgerWriter*> writers = {&w1, &w2};
  wait_for_progress(writers, 50);

  // A loose lag bound: this test is about the fleet moving together, and a loaded machine can
  // hold a freshly re-created stream's apply worker back for seconds.
  auto cut = ctl("cutover", {"--skip-verify", "--max-lag-ms", "10000"});
  ASSERT_TRUE(cut.success()) << cut.describe() << proxy_->log() << second.log();
  std::cout << cut.out;
  EXPECT_NE(cut.out.find("2 member(s) holding"), std::string::npos) << cut.out;
  EXPECT_EQ(missing_on(s.target, acknowledged(writers)), std::vector<std::int64_t>{});
  wait_for_progress(writers, 50);
  EXPECT_EQ(missing_on(s.target, acknowledged(writers)), std::vector<std::int64_t>{});

  // The other sidecar coordinates the rollback.
  auto back = run_command({pgshift_binary().string(), "ctl", "--url",
                           "http://127.0.0.1:" + std::to_string(second.admin_port()),
                           "--token-file", second.admin_token_file().string(), "rollback", kRoute,
                           "--skip-verify", "--max-lag-ms", "10000"},
                          120s);
  ASSERT_TRUE(back.success()) << back.describe();
  std::cout << back.out;
  EXPECT_EQ(missing_on(s.source, acknowledged(writers)), std::vector<std::int64_t>{});
  wait_for_progress(writers, 50);
  w1.stop();
  w2.stop();
  EXPECT_EQ(w1.errors(), std::vector<std::string>{});
  EXPECT_EQ(w2.errors(), std::vector<std::string>{});
  wait_caught_up(s.source, s.target, "source");
  EXPECT_EQ(missing_on(s.target, acknowledged(writers)), std::vector<std::int64_t>{});
  EXPECT_EQ(table_fingerprints(s.source), table_fingerprints(s.target));
}

TEST_F(CutoverTest, DryRunAndFinalize) {
  auto& s = servers();
  auto dry = ctl("cutover", {"--dry-run", "--skip-verify"});
  EXPECT_TRUE(dry.success()) << dry.describe();
  EXPECT_NE(dry.out.find("dry_run"), std::string::npos) << dry.out;
  EXPECT_FALSE(fenced(s.source));
  ASSERT_TRUE(ctl("cutover", {"--skip-verify"}).success());
  auto fin = ctl("finalize");
  ASSERT_TRUE(fin.success()) << fin.describe();
  EXPECT_NE(fin.out.find("finalize of route app: completed"), std::string::npos) << fin.out;
  EXPECT_EQ(s.source.exec("SELECT count(*) FROM pg_subscription", kDb).scalar(), "0");
  EXPECT_EQ(s.target.exec("SELECT count(*) FROM pg_replication_slots").scalar(), "0");
  EXPECT_EQ(s.source.exec("SELECT count(*) FROM pg_replication_slots").scalar(), "0");
  PgConnection app(client());
  app.exec("INSERT INTO ledger VALUES (11, 'target only')");
  EXPECT_EQ(ledger_ids(s.target), std::set<std::int64_t>{11});
  EXPECT_TRUE(fenced(s.source));  // the retired source stays read-only

  const auto m = fetch_metrics(*proxy_);
  EXPECT_GE(
      metric_value(m, "pgshift_cutover_phase_seconds_count", {{"route", "app"}, {"step", "fence"}})
          .value_or(0),
      1)
      << metric_lines(m, "pgshift_cutover");
  for (const char* kind : {"cutover", "finalize"}) {
    EXPECT_EQ(metric_value(m, "pgshift_cutover_operations_total",
                           {{"route", "app"}, {"kind", kind}, {"result", "completed"}}),
              1)
        << kind << "\n"
        << metric_lines(m, "pgshift_cutover");
  }
  EXPECT_EQ(metric_value(m, "pgshift_cutover_operations_total",
                         {{"route", "app"}, {"kind", "cutover"}, {"result", "dry_run"}}),
            1);
}

// Issue 13's verify precondition through pgshift in file mode: `pgshift verify` records its
// run next to the state file, and the sidecar's coordinator reads it.
TEST_F(CutoverTest, CutoverAndRollbackNeedACleanVerifyRunRecordedByPgshiftVerify) {
  auto& s = servers();
  auto verify = [&] {
    return run_command(
        {pgshift_binary().string(), "verify", kRoute, "--config", proxy_->config_file().string()},
        120s);
  };
  auto refused = [&](const std::string& kind, const std::string& reason) {
    auto r = ctl(kind);
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.out.find(reason), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("run pgshift verify app --config FILE, or pass --skip-verify"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("nothing was changed"), std::string::npos) << r.out;
  };
  refused("cutover", "no verify run is recorded for route app");
  EXPECT_FALSE(fenced(s.source));

  s.target.exec("INSERT INTO ledger VALUES (-1, 'only on the target')", kDb);
  auto v = verify();
  EXPECT_EQ(v.exit_code, 1) << v.describe();
  const auto file = (proxy_->dir() / "pgshift-state.json.verify.json").string();
  EXPECT_NE(v.out.find("verify result recorded in " + file), std::string::npos) << v.describe();
  refused("cutover", "found 1 table(s) different or not verified");

  s.target.exec("DELETE FROM ledger WHERE id = -1", kDb);
  v = verify();
  ASSERT_EQ(v.exit_code, 0) << v.describe();
  auto cut = ctl("cutover");
  ASSERT_TRUE(cut.success()) << cut.describe();
  EXPECT_TRUE(fenced(s.source));

  refused("rollback", "before the route's last state change");
  v = verify();
  ASSERT_EQ(v.exit_code, 0) << v.describe();
  auto back = ctl("rollback");
  ASSERT_TRUE(back.success()) << back.describe();
  EXPECT_FALSE(fenced(s.source));
}

}  // namespace
}  // namespace pgshift::test
