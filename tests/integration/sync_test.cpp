// Logical sync end to end (issue 11): `pgshift sync check|start|status|stop` and
// `pgshift verify` against two real PostgreSQL 15 clusters (wal_level=logical), with pgbench
// TPC-B running through pgshift during the initial copy, the lag marker's gate and
// read-your-writes on the read split, and a clean stop.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <map>
#include <thread>

#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "postgres-test-password";

struct SyncServers {
  PgCluster source{
      {.name = "source", .settings = {{"wal_level", "logical"}, {"max_connections", "100"}}}};
  PgCluster target{
      {.name = "target", .settings = {{"wal_level", "logical"}, {"max_connections", "100"}}}};
};
const auto* const sync_env = SharedEnvironment<SyncServers>::install();
SyncServers& servers() {
  return SharedEnvironment<SyncServers>::get();
}

// A route `name` from database `db` on `source` to the same database on the target, as the
// superuser (sync needs fixed credentials), plus `extra` route keys.
std::string config_yaml(const PgCluster& source, const std::string& name, const std::string& db,
                        const std::string& extra, const std::string& pool_mode = "session") {
  ConfigSpec spec;
  RouteSpec route{.name = name,
                  .client_database = db,
                  .source = upstream_of(source, "", db),
                  .target = upstream_of(servers().target, "", db)};
  route.extra_yaml = extra;
  route.pool_mode = pool_mode;
  route.pool_size = 20;
  spec.routes.push_back(route);
  return spec.to_yaml();
}

// Runs `pgshift <args...>` on a config without starting a proxy; returns exit code + output.
CommandResult run_cli(const std::string& yaml, std::vector<std::string> args) {
  PgshiftOptions o{.config_yaml = yaml, .users = users_file_text({{"postgres", kPassword}})};
  o.args = std::move(args);
  o.args.push_back("--config");
  o.args.push_back("{{config_file}}");
  o.wait_ready = false;
  PgshiftProcess p(o);
  CommandResult r;
  auto st = p.process().wait_for(120s);
  r.timed_out = !st.has_value();
  r.exit_code = st ? st->shell_code() : -1;
  r.out = p.log();
  return r;
}

void create_db_both(const std::string& db) {
  if (!servers().target.running()) servers().target.start();  // a failed outage test
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    c->exec("CREATE DATABASE " + db);
  }
}

TEST(SyncCheck, WalLevelReplicaAndTableWithoutPrimaryKeyAreBlockers) {
  PgCluster replica_source{{.name = "replica-source"}};  // wal_level = replica (default)
  replica_source.exec("CREATE DATABASE chk");
  replica_source.exec("CREATE TABLE nopk (a int, b text)", "chk");
  replica_source.exec("CREATE TABLE withpk (id int PRIMARY KEY)", "chk");
  servers().target.exec("DROP DATABASE IF EXISTS chk WITH (FORCE)");
  servers().target.exec("CREATE DATABASE chk");
  servers().target.exec("CREATE TABLE nopk (a int, b text)", "chk");
  servers().target.exec("CREATE TABLE withpk (id int PRIMARY KEY)", "chk");

  auto r = run_cli(config_yaml(replica_source, "chk", "chk", ""), {"sync", "check", "chk"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("BLOCKER [source] wal_level is 'replica'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rds.logical_replication"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("table public.nopk has no primary key"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ALTER TABLE \"public\".\"nopk\" REPLICA IDENTITY FULL"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("withpk has no primary key"), std::string::npos) << r.out;
}

TEST(SyncCheck, GoodPairPassesAndSchemaDiffIsReadable) {
  create_db_both("good");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)", "good");
    c->exec("CREATE SEQUENCE counter", "good");
  }
  const std::string yaml = config_yaml(servers().source, "good", "good", "");
  auto ok = run_cli(yaml, {"sync", "check", "good"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("the target server reaches the source"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("sequence(s): not carried"), std::string::npos) << ok.out;
  EXPECT_NE(ok.out.find("ready for pgshift sync start good"), std::string::npos) << ok.out;
  // The probe left nothing behind.
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM pg_subscription", "good").scalar(), "0");

  servers().target.exec("INSERT INTO items VALUES (1, 'already here')", "good");
  auto rows = run_cli(yaml, {"sync", "check", "good"});
  EXPECT_EQ(rows.exit_code, 1) << rows.out;
  EXPECT_NE(rows.out.find("table public.items already has rows on the target"), std::string::npos)
      << rows.out;
  EXPECT_NE(rows.out.find("TRUNCATE \"public\".\"items\";"), std::string::npos) << rows.out;
  servers().target.exec("TRUNCATE items", "good");

  servers().target.exec("ALTER TABLE items ALTER COLUMN name TYPE varchar(20)", "good");
  auto diff = run_cli(yaml, {"sync", "check", "good"});
  EXPECT_EQ(diff.exit_code, 1) << diff.out;
  EXPECT_NE(diff.out.find("- column public.items.name text NOT NULL"), std::string::npos)
      << diff.out;
  EXPECT_NE(diff.out.find("+ column public.items.name character varying(20) NOT NULL"),
            std::string::npos)
      << diff.out;
}

TEST(SyncCheck, WrongPasswordIsOneClearBlocker) {
  create_db_both("wrongpw");
  std::string yaml = config_yaml(servers().source, "wrongpw", "wrongpw", "");
  const std::string good = "password: \"" + std::string(kPassword) + "\"";
  yaml.replace(yaml.rfind(good), good.size(), "password: \"not-the-password\"");  // the target's
  auto r = run_cli(yaml, {"sync", "check", "wrongpw"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("BLOCKER [target] could not connect to 127.0.0.1:" +
                       std::to_string(servers().target.port()) + "/wrongpw as postgres"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("password authentication failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("fix: check routes[].target host, port, user and password"),
            std::string::npos)
      << r.out;
}

TEST(SyncStart, AFailedStartDropsWhatItCreated) {
  create_db_both("rollback");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE items (id int PRIMARY KEY)", "rollback");
  }
  // A subscription of pgshift's name, but to another publication (no slot, not connected).
  servers().target.exec("CREATE SUBSCRIPTION pgshift_rollback CONNECTION 'host=127.0.0.1 port=" +
                            std::to_string(servers().source.port()) +
                            " dbname=rollback' PUBLICATION other WITH (connect = false)",
                        "rollback");
  auto r = run_cli(config_yaml(servers().source, "rollback", "rollback", ""),
                   {"sync", "start", "rollback"});
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("subscription pgshift_rollback exists on the target with publication(s) "
                       "other"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("rolled back: dropped publication pgshift_rollback"), std::string::npos)
      << r.out;
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM pg_publication", "rollback").scalar(), "0");
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM pg_replication_slots").scalar(), "0");
  servers().target.exec(
      "ALTER SUBSCRIPTION pgshift_rollback SET (slot_name = NONE); "
      "DROP SUBSCRIPTION pgshift_rollback",
      "rollback");
}

// The lag the sidecar exports for route `route`; nullopt before the first scrape has it.
std::optional<double> lag_seconds(const PgshiftProcess& proxy, const std::string& route) {
  return metric_value(fetch_metrics(proxy), "pgshift_sync_lag_seconds", {{"route", route}});
}

std::string target_health(const PgshiftProcess& proxy, const std::string& route) {
  const std::string body = fetch_admin(proxy, "/v1/routes/" + route, false);
  // "target":{..."health":{"status":"healthy"...
  const auto t = body.find("\"target\"");
  if (t == std::string::npos) return "";
  const auto h = body.find("\"status\":\"", body.find("\"health\"", t));
  if (h == std::string::npos) return "";
  const auto start = h + 10;
  return body.substr(start, body.find('"', start) - start);
}

TEST(SyncFlow, CopyUnderPgbenchThenLagVerifyReadYourWritesAndStop) {
  PgCluster& source = servers().source;
  PgCluster& target = servers().target;
  create_db_both("bench");
  auto init =
      run_command(ProcessOptions{.argv = {pg_tool("pgbench").string(), "-i", "-q", "-s", "2", "-h",
                                          source.host(), "-p", std::to_string(source.port()), "-U",
                                          "postgres", "bench"},
                                 .env = {{"PGPASSWORD", kPassword}}},
                  120s);
  ASSERT_TRUE(init.success()) << init.describe();
  // pgbench_history has no key; with REPLICA IDENTITY FULL it can be published and verified.
  source.exec("ALTER TABLE pgbench_history REPLICA IDENTITY FULL", "bench");
  source.exec("CREATE TABLE ryw_probe (k text PRIMARY KEY, v bigint NOT NULL)", "bench");

  PgshiftOptions po{.config_yaml = config_yaml(source, "bench", "bench",
                                               "sync:\n  mode: logical\n  heartbeat_ms: 100\n"
                                               "read_split:\n  initial_read_percent: 50\n",
                                               "transaction"),
                    .users = users_file_text({{"postgres", kPassword}})};
  PgshiftProcess proxy(po);

  // TPC-B through pgshift while the initial copy runs.
  Process bench(ProcessOptions{
      .argv = {pg_tool("pgbench").string(), "-n", "-c", "8", "-j", "2", "-T", "600", "-h",
               proxy.host(), "-p", std::to_string(proxy.port()), "-U", "postgres", "bench"},
      .env = {{"PGPASSWORD", kPassword}}});

  auto start = run_pgshift(proxy, {"sync", "start", "bench", "--copy-schema"}, 180s);
  ASSERT_EQ(start.exit_code, 0) << start.describe();
  EXPECT_NE(start.out.find("every table is ready"), std::string::npos) << start.out;
  EXPECT_NE(start.out.find("table public.pgbench_accounts: ready"), std::string::npos) << start.out;
  ASSERT_TRUE(bench.running()) << "pgbench ended during the copy";

  // Lag under 1 s while pgbench keeps writing.
  ASSERT_TRUE(wait_until(
      [&] {
        auto lag = lag_seconds(proxy, "bench");
        return lag && *lag < 1.0;
      },
      60s, "pgshift_sync_lag_seconds{route=bench} < 1"));
  auto status = run_pgshift(proxy, {"sync", "status", "bench", "--json"});
  EXPECT_EQ(status.exit_code, 0) << status.describe();
  EXPECT_NE(status.out.find("\"tables_ready\":6"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"lag_ms\""), std::string::npos) << status.out;
  auto state = metric_value(fetch_metrics(proxy), "pgshift_sync_state",
                            {{"route", "bench"}, {"state", "streaming"}});
  EXPECT_EQ(state.value_or(0), 1.0);

  bench.terminate(10s);

  auto equal = run_pgshift(proxy, {"verify", "bench"});
  EXPECT_EQ(equal.exit_code, 0) << equal.describe();
  EXPECT_NE(equal.out.find("EQUAL"), std::string::npos) << equal.out;
  EXPECT_NE(equal.out.find("public.pgbench_accounts: equal (200000 rows)"), std::string::npos)
      << equal.out;

  // A stray write on the target: verify names the row's key.
  target.exec("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 777", "bench");
  auto diff = run_pgshift(proxy, {"verify", "bench", "--tables", "pgbench_accounts"});
  EXPECT_EQ(diff.exit_code, 1) << diff.describe();
  EXPECT_NE(diff.out.find("changed:           key 777"), std::string::npos) << diff.out;
  auto diff_json =
      run_pgshift(proxy, {"verify", "bench", "--tables", "pgbench_accounts", "--json"});
  EXPECT_EQ(diff_json.exit_code, 1);
  EXPECT_NE(diff_json.out.find("\"changed\":[\"777\"]"), std::string::npos) << diff_json.out;
  target.exec("UPDATE pgbench_accounts SET abalance = abalance - 1 WHERE aid = 777", "bench");

  // Read split at 50 % with read-your-writes by marker: no stale read, ever.
  ASSERT_TRUE(wait_until([&] { return target_health(proxy, "bench") == "healthy"; }, 15s,
                         "the target to be healthy"));
  PgConnection app(proxy.conninfo("postgres", kPassword, "bench"));
  const std::string target_port = std::to_string(target.port());
  int stale = 0, pair_reads_on_target = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string key = "u" + std::to_string(i % 40);
    const std::string tag = "/* user_id='" + key + "' */ ";
    app.exec(tag + "INSERT INTO ryw_probe VALUES ('" + key + "', " + std::to_string(i) +
             ") ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v");
    auto r =
        app.exec(tag + "SELECT v, current_setting('port') FROM ryw_probe WHERE k = '" + key + "'");
    if (r.size() != 1 || r.at(0, 0) != std::to_string(i)) ++stale;
    if (r.size() == 1 && r.at(0, 1) == target_port) ++pair_reads_on_target;
  }
  EXPECT_EQ(stale, 0);
  // Held reads are released once the target has applied a marker written after the write:
  // a writer whose key the split sends to the target reads from the target again, fresh.
  int released = 0;
  for (int u = 0; u < 40 && released == 0; ++u) {
    const std::string tag = "/* user_id='u" + std::to_string(u) + "' */ ";
    const std::string expected =
        app.exec(tag + "SELECT v FROM ryw_probe WHERE k = 'u" + std::to_string(u) + "' FOR SHARE")
            .scalar();
    if (!poll_until(
            [&] {
              auto r =
                  app.exec(tag + "SELECT v, current_setting('port') FROM ryw_probe WHERE k = 'u" +
                           std::to_string(u) + "'");
              EXPECT_EQ(r.at(0, 0), expected);
              return r.at(0, 1) == target_port;
            },
            2s)) {
      continue;  // this key's bucket is on the source side
    }
    ++released;
  }
  EXPECT_EQ(released, 1) << "no writer's reads went back to the target after catching up";
  // Other users' reads still go to the target (about half of the keys).
  int others_on_target = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = app.exec("/* user_id='reader" + std::to_string(i) +
                      "' */ SELECT current_setting('port') FROM ryw_probe LIMIT 1");
    if (r.at(0, 0) == target_port) ++others_on_target;
  }
  EXPECT_GT(others_on_target, 50) << "pair reads on target: " << pair_reads_on_target;
  EXPECT_LT(others_on_target, 150);
  if (std::getenv("SYNC_TEST_VERBOSE")) {
    std::cerr << start.out << equal.out << diff.out << status.out
              << "pair reads on target: " << pair_reads_on_target << "\n";
  }

  auto stop = run_pgshift(proxy, {"sync", "stop", "bench"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_EQ(target.exec("SELECT count(*) FROM pg_subscription").scalar(), "0");
  EXPECT_EQ(source.exec("SELECT count(*) FROM pg_replication_slots").scalar(), "0");
  EXPECT_EQ(source.exec("SELECT count(*) FROM pg_publication", "bench").scalar(), "0");
  // Without sync the lag only grows: split reads fall back to the source.
  ASSERT_TRUE(wait_until(
      [&] {
        auto lag = lag_seconds(proxy, "bench");
        return lag && *lag >= 1.0;
      },
      10s, "the lag to pass max_lag_ms once sync is stopped"));
  auto r = app.exec("/* user_id='reader-after-stop' */ SELECT current_setting('port')");
  EXPECT_EQ(r.at(0, 0), std::to_string(source.port()));
}

// The target stops under load: the lag rises, split reads fall back to the source and keep
// working, writes never notice; the target comes back: sync resumes, the lag returns under
// 1 s. The source restarts: sync resumes again, and verify finds both sides equal.
TEST(SyncFlow, TargetStoppedAndSourceRestartedUnderLoad) {
  PgCluster& source = servers().source;
  PgCluster& target = servers().target;
  create_db_both("outage");
  for (PgCluster* c : {&source, &target}) {
    c->exec("CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL)", "outage");
  }
  PgshiftProcess proxy({.config_yaml = config_yaml(source, "outage", "outage",
                                                   "sync:\n  mode: logical\n  heartbeat_ms: 100\n"
                                                   "read_split:\n  initial_read_percent: 100\n",
                                                   "transaction"),
                        .users = users_file_text({{"postgres", kPassword}})});
  auto start = run_pgshift(proxy, {"sync", "start", "outage"});
  ASSERT_EQ(start.exit_code, 0) << start.describe();
  // A second start adopts what the first created.
  auto again = run_pgshift(proxy, {"sync", "start", "outage"});
  EXPECT_EQ(again.exit_code, 0) << again.describe();
  EXPECT_NE(again.out.find("publication pgshift_outage exists on the source: adopted"),
            std::string::npos)
      << again.out;
  EXPECT_NE(again.out.find("subscription pgshift_outage exists on the target: adopted"),
            std::string::npos)
      << again.out;

  std::atomic<bool> stop{false};
  std::atomic<long> writes{0}, write_errors{0};
  std::thread writer([&] {
    PgConnection c(proxy.conninfo("postgres", kPassword, "outage"));
    for (long i = 1; !stop; ++i) {
      try {
        c.exec("INSERT INTO events VALUES (" + std::to_string(i) + ", 'e" + std::to_string(i) +
               "')");
        ++writes;
      } catch (const std::exception&) {
        ++write_errors;
      }
    }
  });
  auto wait_writes = [&](long more) {
    const long goal = writes + more;
    return wait_until([&] { return writes >= goal; }, 20s, "the writer to make progress");
  };
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "outage").value_or(99) < 1.0; }, 30s,
                         "lag under 1 s before the outage"));
  ASSERT_TRUE(wait_writes(100));

  target.stop(StopMode::fast);
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "outage").value_or(0) >= 1.0; }, 20s,
                         "the lag to rise while the target is down"));
  ASSERT_TRUE(wait_writes(100));
  // Every read now falls back to the source, without errors.
  PgConnection reader(proxy.conninfo("postgres", kPassword, "outage"));
  for (int i = 0; i < 50; ++i) {
    auto r = reader.exec("/* user_id='r" + std::to_string(i) +
                         "' */ SELECT current_setting('port'), count(*) FROM events");
    EXPECT_EQ(r.at(0, 0), std::to_string(source.port()));
  }
  const auto metrics = fetch_metrics(proxy);
  EXPECT_GT(metric_value(metrics, "pgshift_sync_state", {{"route", "outage"}, {"state", "down"}})
                .value_or(0),
            0.5)
      << metric_lines(metrics, "pgshift_sync_state");

  target.start();
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "outage").value_or(99) < 1.0; }, 60s,
                         "the lag to return under 1 s after the target is back"));
  ASSERT_TRUE(wait_writes(100));
  stop = true;
  writer.join();
  EXPECT_EQ(write_errors, 0);

  // The source restarts: the subscription reconnects and resumes from its slot.
  source.restart(StopMode::fast);
  ASSERT_TRUE(wait_until(
      [&] {
        try {
          PgConnection c(proxy.conninfo("postgres", kPassword, "outage"));
          c.exec(
              "INSERT INTO events SELECT g, 'after restart' FROM generate_series(1000001, "
              "1000100) g");
          return true;
        } catch (const std::exception&) {
          return false;  // the pool may hand out a connection from before the restart once
        }
      },
      20s, "a write through pgshift after the source restart"));
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "outage").value_or(99) < 1.0; }, 60s,
                         "the lag to return under 1 s after the source restart"));

  auto equal = run_pgshift(proxy, {"verify", "outage"});
  EXPECT_EQ(equal.exit_code, 0) << equal.describe();
  auto stopped = run_pgshift(proxy, {"sync", "stop", "outage"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.describe();
  EXPECT_EQ(source.exec("SELECT count(*) FROM pg_replication_slots").scalar(), "0");
}

// A stray write on the target breaks the apply (unique violation): status and the metric
// say so, split reads fall back to the source; removing the stray row lets sync resume.
TEST(SyncFlow, ApplyErrorIsReportedAndReadsFallBack) {
  PgCluster& source = servers().source;
  PgCluster& target = servers().target;
  create_db_both("applyerr");
  for (PgCluster* c : {&source, &target}) {
    c->exec("CREATE TABLE items (id int PRIMARY KEY, v text)", "applyerr");
  }
  PgshiftProcess proxy({.config_yaml = config_yaml(source, "applyerr", "applyerr",
                                                   "sync:\n  mode: logical\n  heartbeat_ms: 100\n"
                                                   "read_split:\n  initial_read_percent: 100\n",
                                                   "transaction"),
                        .users = users_file_text({{"postgres", kPassword}})});
  auto start = run_pgshift(proxy, {"sync", "start", "applyerr"});
  ASSERT_EQ(start.exit_code, 0) << start.describe();
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "applyerr").value_or(99) < 1.0; }, 30s,
                         "lag under 1 s"));

  target.exec("INSERT INTO items VALUES (5, 'stray')", "applyerr");
  source.exec("INSERT INTO items VALUES (5, 'real')", "applyerr");
  ASSERT_TRUE(wait_until(
      [&] {
        return metric_value(fetch_metrics(proxy), "pgshift_sync_state",
                            {{"route", "applyerr"}, {"state", "error"}})
                   .value_or(0) == 1.0;
      },
      30s, "pgshift_sync_state{state=error}"));
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "applyerr").value_or(0) >= 1.0; }, 10s,
                         "the lag to pass 1 s"));
  PgConnection reader(proxy.conninfo("postgres", kPassword, "applyerr"));
  for (int i = 0; i < 20; ++i) {
    auto r = reader.exec("/* user_id='r" + std::to_string(i) +
                         "' */ SELECT current_setting('port'), v FROM items WHERE id = 5");
    EXPECT_EQ(r.at(0, 0), std::to_string(source.port()));
    EXPECT_EQ(r.at(0, 1), "real");
  }
  auto status = run_pgshift(proxy, {"sync", "status", "applyerr"});
  EXPECT_EQ(status.out.find("apply errors 0"), std::string::npos) << status.out;

  target.exec("DELETE FROM items WHERE id = 5", "applyerr");
  ASSERT_TRUE(wait_until([&] { return lag_seconds(proxy, "applyerr").value_or(99) < 1.0; }, 60s,
                         "sync to resume once the stray row is gone"));
  auto equal = run_pgshift(proxy, {"verify", "applyerr"});
  EXPECT_EQ(equal.exit_code, 0) << equal.describe();
  auto stopped = run_pgshift(proxy, {"sync", "stop", "applyerr"});
  EXPECT_EQ(stopped.exit_code, 0) << stopped.describe();
}

// A measurement, not a check (disabled by default): verify rows/s on a pgbench database of
// scale SYNC_BENCH_SCALE (default 10: 1,000,000 accounts) after an initial copy.
// Run: sync_test --gtest_also_run_disabled_tests --gtest_filter=SyncBench.*
TEST(SyncBench, DISABLED_VerifyThroughput) {
  PgCluster& source = servers().source;
  create_db_both("vbench");
  const char* scale = std::getenv("SYNC_BENCH_SCALE");
  auto init = run_command(
      ProcessOptions{
          .argv = {pg_tool("pgbench").string(), "-i", "-q", "-s", scale ? scale : "10", "-h",
                   source.host(), "-p", std::to_string(source.port()), "-U", "postgres", "vbench"},
          .env = {{"PGPASSWORD", kPassword}}},
      600s);
  ASSERT_TRUE(init.success()) << init.describe();
  source.exec("ALTER TABLE pgbench_history REPLICA IDENTITY FULL", "vbench");
  PgshiftProcess proxy(
      {.config_yaml = config_yaml(source, "vbench", "vbench", "sync:\n  mode: logical\n"),
       .users = users_file_text({{"postgres", kPassword}})});
  auto start = run_pgshift(proxy, {"sync", "start", "vbench", "--copy-schema"}, 600s);
  ASSERT_EQ(start.exit_code, 0) << start.describe();
  auto v = run_pgshift(proxy, {"verify", "vbench", "--json"}, 600s);
  EXPECT_EQ(v.exit_code, 0) << v.describe();
  std::cout << start.out << v.out;
  run_pgshift(proxy, {"sync", "stop", "vbench"});
}

}  // namespace
}  // namespace pgshift::test
