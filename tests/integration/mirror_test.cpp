// Mirrored writes end to end (issue 12, sync.mode mirror) against two real PostgreSQL 15
// clusters: `pgshift sync start` in mirror mode under pgbench TPC-B through pgshift (fleet
// hold, exported snapshot, COPY, replay of everything committed after the hold), the
// extended protocol, prepared statements, binary parameters, savepoints and COPY replayed
// exactly, a provoked divergence in the journal, the pipelined replay cut by an error or a
// FATAL in its middle, the target down in async mode, and a queue
// overflow under mark_diverged. "No lost writes" is checked the way a user would: pgshift
// verify says source = target.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <thread>

#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "postgres-test-password";

struct MirrorServers {
  PgCluster source{{.name = "source", .settings = {{"max_connections", "100"}}}};
  PgCluster target{{.name = "target", .settings = {{"max_connections", "100"}}}};
};
const auto* const mirror_env = SharedEnvironment<MirrorServers>::install();
MirrorServers& servers() {
  return SharedEnvironment<MirrorServers>::get();
}

std::string config_yaml(const std::string& db, const std::string& mirror_yaml = "",
                        const std::string& pool_mode = "transaction",
                        const std::string& control = "file") {
  ConfigSpec spec;
  spec.control = control;
  RouteSpec route{.name = db,
                  .client_database = db,
                  .source = upstream_of(servers().source, "", db),
                  .target = upstream_of(servers().target, "", db)};
  route.extra_yaml = "sync:\n  mode: mirror\n" + mirror_yaml;
  route.pool_mode = pool_mode;
  route.pool_size = 20;
  spec.routes.push_back(route);
  return spec.to_yaml();
}

void create_db_both(const std::string& db) {
  if (!servers().target.running()) servers().target.start();
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    c->exec("CREATE DATABASE " + db);
  }
}

CommandResult run_pgshift(const PgshiftProcess& proxy, std::vector<std::string> args,
                          std::chrono::seconds timeout = 120s) {
  std::vector<std::string> argv{pgshift_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--config");
  argv.push_back(proxy.config_file().string());
  return run_command(argv, timeout);
}

// The route's sync.mirror object from GET /v1/routes/{name}.
boost::json::object mirror_status(const PgshiftProcess& proxy, const std::string& route) {
  auto v = boost::json::parse(fetch_admin(proxy, "/v1/routes/" + route));
  const auto& m = v.as_object().at("sync").as_object().at("mirror");
  return m.is_object() ? m.as_object() : boost::json::object{};
}

std::int64_t number(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<std::int64_t>() : -1;
}

bool drained(const PgshiftProcess& proxy, const std::string& route) {
  auto m = mirror_status(proxy, route);
  return number(m, "queued") == 0 && m.contains("state") && m.at("state") == "streaming";
}

CommandResult pgbench(const PgshiftProcess& proxy, const std::string& db,
                      std::vector<std::string> extra) {
  std::vector<std::string> argv{pg_tool("pgbench").string(),  "-n", "-h",      proxy.host(), "-p",
                                std::to_string(proxy.port()), "-U", "postgres"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(db);
  return run_command(ProcessOptions{.argv = argv, .env = {{"PGPASSWORD", kPassword}}}, 300s);
}

PgshiftOptions proxy_options(const std::string& yaml) {
  return {.config_yaml = yaml, .users = users_file_text({{"postgres", kPassword}})};
}

TEST(MirrorFlow, StartUnderPgbenchReplaysEverythingAndVerifyIsEqual) {
  create_db_both("mbench");
  PgCluster& source = servers().source;
  auto init =
      run_command(ProcessOptions{.argv = {pg_tool("pgbench").string(), "-i", "-q", "-s", "1", "-h",
                                          source.host(), "-p", std::to_string(source.port()), "-U",
                                          "postgres", "mbench"},
                                 .env = {{"PGPASSWORD", kPassword}}},
                  120s);
  ASSERT_TRUE(init.success()) << init.describe();
  PgshiftProcess proxy(proxy_options(config_yaml("mbench")));

  // TPC-B through pgshift, 16 clients, running across the start.
  Process bench(ProcessOptions{
      .argv = {pg_tool("pgbench").string(), "-n", "-c", "16", "-j", "2", "-T", "15", "-h",
               proxy.host(), "-p", std::to_string(proxy.port()), "-U", "postgres", "mbench"},
      .env = {{"PGPASSWORD", kPassword}}});
  auto start = run_pgshift(proxy, {"sync", "start", "mbench", "--copy-schema"}, 180s);
  ASSERT_EQ(start.exit_code, 0) << start.describe() << proxy.log();
  EXPECT_NE(start.out.find("copy public.pgbench_accounts"), std::string::npos) << start.out;
  EXPECT_NE(start.out.find("snapshot"), std::string::npos) << start.out;
  ASSERT_TRUE(bench.running()) << "pgbench ended during the start";
  ASSERT_TRUE(wait_until([&] { return number(mirror_status(proxy, "mbench"), "applied") > 100; },
                         60s, "the mirror applies transactions"));
  // pgbench ends by itself (a client killed in the middle of its COMMIT would leave that
  // transaction in doubt, recorded as a divergence: see docs/sync.md).
  auto exit = bench.wait_for(120s);
  ASSERT_TRUE(exit.has_value() && exit->shell_code() == 0) << "pgbench failed";
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mbench"); }, 60s, "the mirror drains"));
  const auto m = mirror_status(proxy, "mbench");
  EXPECT_EQ(number(m, "divergences"), 0) << boost::json::serialize(m);

  // pgbench_history takes CURRENT_TIMESTAMP, which a replay cannot reproduce: it is flagged
  // (and verify would find it); everything else must be equal.
  auto unsafe = metric_value(fetch_metrics(proxy), "pgshift_mirror_unsafe_total",
                             {{"route", "mbench"}, {"reason", "volatile_function"}});
  EXPECT_GT(unsafe.value_or(0), 0);
  auto verify = run_pgshift(
      proxy, {"verify", "mbench", "--tables", "pgbench_accounts,pgbench_branches,pgbench_tellers"});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_NE(verify.out.find("EQUAL"), std::string::npos) << verify.out;
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM pgbench_history", "mbench").scalar(),
            servers().target.exec("SELECT count(*) FROM pgbench_history", "mbench").scalar());
}

// Two sidecars of one fleet (control: target): the start holds both, each mirrors its own
// clients' commits, and TPC-B through both at once ends equal (its updates add to balances:
// the order between sidecars does not change the result; see docs/sync.md for the limit).
TEST(MirrorFlow, TwoSidecarsWritingAtOnceEndEqual) {
  create_db_both("mtwo");
  PgCluster& source = servers().source;
  auto init =
      run_command(ProcessOptions{.argv = {pg_tool("pgbench").string(), "-i", "-q", "-s", "1", "-h",
                                          source.host(), "-p", std::to_string(source.port()), "-U",
                                          "postgres", "mtwo"},
                                 .env = {{"PGPASSWORD", kPassword}}},
                  120s);
  ASSERT_TRUE(init.success()) << init.describe();
  const std::string yaml = config_yaml("mtwo", "", "transaction", "{poll_ms: 250}");
  PgshiftProcess a(proxy_options(yaml));
  PgshiftProcess b(proxy_options(yaml));
  // The two sidecars' clients use the extended protocol, one with prepared statements: the
  // replay pipelines both (statements first prepared by a transaction not answered yet wait).
  auto bench = [&](PgshiftProcess& p, const char* protocol) {
    return Process(ProcessOptions{
        .argv = {pg_tool("pgbench").string(), "-n", "-M", protocol, "-c", "4", "-j", "1", "-T",
                 "15", "-h", p.host(), "-p", std::to_string(p.port()), "-U", "postgres", "mtwo"},
        .env = {{"PGPASSWORD", kPassword}}});
  };
  Process ba = bench(a, "prepared"), bb = bench(b, "extended");
  auto start = run_pgshift(a, {"sync", "start", "mtwo", "--copy-schema"}, 180s);
  ASSERT_EQ(start.exit_code, 0) << start.describe() << a.log();
  EXPECT_NE(start.out.find("2 member(s) hold"), std::string::npos) << start.out;
  ASSERT_TRUE(wait_until(
      [&] {
        return number(mirror_status(a, "mtwo"), "applied") > 50 &&
               number(mirror_status(b, "mtwo"), "applied") > 50;
      },
      60s, "both sidecars replay"));
  for (Process* p : {&ba, &bb}) {
    auto exit = p->wait_for(120s);
    ASSERT_TRUE(exit.has_value() && exit->shell_code() == 0) << "pgbench failed";
  }
  ASSERT_TRUE(wait_until([&] { return drained(a, "mtwo") && drained(b, "mtwo"); }, 60s,
                         "both mirrors drain"));
  EXPECT_EQ(number(mirror_status(a, "mtwo"), "divergences"), 0);
  EXPECT_EQ(number(mirror_status(b, "mtwo"), "divergences"), 0);
  auto verify = run_pgshift(
      a, {"verify", "mtwo", "--tables", "pgbench_accounts,pgbench_branches,pgbench_tellers"});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_NE(verify.out.find("EQUAL"), std::string::npos) << verify.out;
}

TEST(MirrorFlow, ExtendedProtocolPreparedSavepointsAndCopyReplayExactly) {
  create_db_both("mexact");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE kv (k int PRIMARY KEY, v text, b bytea)", "mexact");
  }
  PgshiftProcess proxy(proxy_options(config_yaml("mexact")));
  auto start = run_pgshift(proxy, {"sync", "start", "mexact"});
  ASSERT_EQ(start.exit_code, 0) << start.describe() << proxy.log();

  PgConnection c(proxy.conninfo("postgres", kPassword, "mexact"));
  // Multi-statement simple query; an explicit transaction with a rolled-back savepoint.
  c.exec("INSERT INTO kv VALUES (1, 'one'); INSERT INTO kv VALUES (2, 'two')");
  c.exec(
      "BEGIN; INSERT INTO kv VALUES (3, 'three'); SAVEPOINT s; INSERT INTO kv VALUES (4, "
      "'gone'); ROLLBACK TO SAVEPOINT s; UPDATE kv SET v = 'THREE' WHERE k = 3; COMMIT");
  // A failed autocommit statement and a rolled-back transaction are not replayed.
  EXPECT_THROW(c.exec("INSERT INTO kv VALUES (1, 'dup')"), std::exception);
  c.exec("BEGIN; DELETE FROM kv; ROLLBACK");
  // Extended protocol, text parameters, a named prepared statement used twice.
  c.exec_params("INSERT INTO kv (k, v) VALUES ($1, $2)", {"5", "five"});
  PGresult* prep =
      PQprepare(c.native(), "ins", "INSERT INTO kv (k, v, b) VALUES ($1, $2, $3)", 3, nullptr);
  ASSERT_EQ(PQresultStatus(prep), PGRES_COMMAND_OK) << PQresultErrorMessage(prep);
  PQclear(prep);
  for (int k : {6, 7}) {
    // Binary parameters: k as int4 network order, b as raw bytes with a NUL inside.
    const std::uint32_t be = htonl(static_cast<std::uint32_t>(k));
    const char bytes[] = {'a', '\0', 'b'};
    const char* values[] = {reinterpret_cast<const char*>(&be), "seven", bytes};
    const int lengths[] = {4, 5, 3};
    const int formats[] = {1, 0, 1};
    PGresult* r = PQexecPrepared(c.native(), "ins", 3, values, lengths, formats, 0);
    ASSERT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
    PQclear(r);
  }
  // COPY FROM STDIN.
  auto copy = try_psql(proxy.conninfo("postgres", kPassword, "mexact"),
                       "\\copy kv (k) FROM PROGRAM 'seq 100 150' WITH (FORMAT csv)");
  ASSERT_TRUE(copy.success()) << copy.describe();
  // pgbench -M prepared with a script of its own (no volatile functions).
  TempDir script("mirror-script");
  {
    std::ofstream f(script.path() / "upd.sql");
    f << "\\set k random(100, 150)\nUPDATE kv SET v = coalesce(v, '') || 'x' WHERE k = :k;\n";
  }
  auto prepared = pgbench(
      proxy, "mexact",
      {"-M", "prepared", "-c", "4", "-t", "50", "-f", (script.path() / "upd.sql").string()});
  ASSERT_TRUE(prepared.success()) << prepared.describe();

  // A client's startup TimeZone (libpq sends PGTZ in the startup packet) is the replay's too.
  auto tz = run_command(
      ProcessOptions{.argv = {pg_tool("psql").string(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d",
                              proxy.conninfo("postgres", kPassword, "mexact"), "-c",
                              "INSERT INTO kv (k, v) VALUES (200, "
                              "'2024-01-01 00:00'::timestamptz::text)"},
                     .env = {{"PGTZ", "Pacific/Auckland"}}},
      60s);
  ASSERT_TRUE(tz.success()) << tz.describe();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mexact"); }, 60s, "the mirror drains"));
  EXPECT_EQ(servers().target.exec("SELECT v FROM kv WHERE k = 200", "mexact").scalar(),
            "2024-01-01 00:00:00+13");
  EXPECT_EQ(number(mirror_status(proxy, "mexact"), "divergences"), 0) << proxy.log();
  EXPECT_EQ(
      servers()
          .target.exec("SELECT string_agg(k || v, ',' ORDER BY k) FROM kv WHERE k < 100", "mexact")
          .scalar(),
      "1one,2two,3THREE,5five,6seven,7seven");
  auto verify = run_pgshift(proxy, {"verify", "mexact"});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_NE(verify.out.find("EQUAL"), std::string::npos) << verify.out;
}

// Read your writes with the mirror: while the replay of key 42's write is held up on the
// target, key 42 reads from the source (it sees its write), another key reads the target
// (split at 100 %, within max_lag_ms); once replayed, everyone reads the new value there.
TEST(MirrorReads, AKeyReadsItsWritesOnlyOnceTheMirrorAppliedThem) {
  create_db_both("mryw");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE kv (k int PRIMARY KEY, v text)", "mryw");
  }
  servers().source.exec("INSERT INTO kv VALUES (1, 'old')", "mryw");
  PgshiftProcess proxy(proxy_options(
      config_yaml("mryw", "read_split:\n  initial_read_percent: 100\n  max_lag_ms: 600000\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mryw"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mryw"); }, 30s, "the mirror drains"));
  PgConnection c(proxy.conninfo("postgres", kPassword, "mryw"));
  auto read = [&](const std::string& key) {
    return c.exec("/* user_id='" + key + "' */ SELECT v FROM kv WHERE k = 1").scalar();
  };
  ASSERT_TRUE(wait_until([&] { return read("7") == "old"; }, 30s, "split reads reach the target"));

  PgConnection blocker(servers().target.conninfo({}, std::nullopt, "mryw"));
  blocker.exec("BEGIN; SELECT * FROM kv WHERE k = 1 FOR UPDATE");  // the replay waits on it
  c.exec("/* user_id='42' */ UPDATE kv SET v = 'new' WHERE k = 1");
  ASSERT_TRUE(wait_until(
      [&] {
        return servers()
                   .target
                   .exec(
                       "SELECT count(*) FROM pg_stat_activity WHERE "
                       "application_name = 'pgshift-mirror' AND "
                       "wait_event_type = 'Lock'",
                       "mryw")
                   .scalar() == "1";
      },
      30s, "the replay waits on the row lock"));
  EXPECT_EQ(read("42"), "new");  // its own write: from the source
  EXPECT_EQ(read("7"), "old");   // another key: the target, not caught up yet
  blocker.exec("COMMIT");
  ASSERT_TRUE(wait_until([&] { return read("7") == "new"; }, 30s, "the target caught up"));
  EXPECT_EQ(read("42"), "new");
}

TEST(MirrorDivergence, ARowChangedOnTheTargetIsJournaledWithBothResults) {
  create_db_both("mdiv");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)", "mdiv");
  }
  servers().source.exec("INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g", "mdiv");
  PgshiftProcess proxy(proxy_options(config_yaml("mdiv")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mdiv"}).exit_code, 0) << proxy.log();
  PgConnection c(proxy.conninfo("postgres", kPassword, "mdiv"));
  c.exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1");
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mdiv"); }, 30s, "the mirror drains"));
  servers().target.exec("DELETE FROM accounts WHERE id = 2", "mdiv");  // behind pgshift's back
  c.exec("UPDATE accounts SET balance = balance + 1 WHERE id = 2");
  ASSERT_TRUE(wait_until([&] { return number(mirror_status(proxy, "mdiv"), "divergences") == 1; },
                         30s, "one divergence"));
  auto m = mirror_status(proxy, "mdiv");
  EXPECT_EQ(m.at("diverged"), true);
  auto div = metric_value(fetch_metrics(proxy), "pgshift_mirror_divergences_total",
                          {{"route", "mdiv"}, {"kind", "result"}});
  EXPECT_EQ(div.value_or(0), 1);
  std::ifstream journal(std::string(m.at("journal").as_string()));
  std::string line, last;
  while (std::getline(journal, line)) last = line;
  auto e = boost::json::parse(last).as_object();
  EXPECT_EQ(e.at("kind"), "result");
  EXPECT_EQ(e.at("authoritative").as_array().at(0), "UPDATE 1") << last;
  EXPECT_EQ(e.at("replay").as_array().at(0), "UPDATE 0") << last;
  EXPECT_NE(std::string(e.at("statement").as_string()).find("UPDATE accounts"), std::string::npos);
  EXPECT_EQ(e.at("parameters"), "redacted");
  auto status = run_pgshift(proxy, {"sync", "status", "mdiv"});
  EXPECT_NE(status.out.find("divergences 1"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("not cut over until pgshift verify is clean"), std::string::npos);
  // verify catches it as well.
  EXPECT_EQ(run_pgshift(proxy, {"verify", "mdiv"}).exit_code, 1);
}

// The replay pipelines the queue: transactions queued behind a blocked one are sent back to
// back once it goes on. One of them fails on the target (a row put there behind pgshift's
// back): exactly that transaction is journaled, and the ones sent behind it in the same
// write are still applied and compared (each is its own transaction).
TEST(MirrorDivergence, AFailureInsideAPipelinedRunIsJournaledAloneTheRestApplies) {
  create_db_both("mpipe");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)", "mpipe");
  }
  PgshiftProcess proxy(proxy_options(config_yaml("mpipe")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mpipe"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mpipe"); }, 30s, "the mirror drains"));
  const auto applied_before = number(mirror_status(proxy, "mpipe"), "applied");
  servers().target.exec("INSERT INTO t VALUES (5, -1)", "mpipe");  // behind pgshift's back
  PgConnection blocker(servers().target.conninfo({}, std::nullopt, "mpipe"));
  blocker.exec("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
  PgConnection c(proxy.conninfo("postgres", kPassword, "mpipe"));
  for (int i = 1; i <= 10; ++i) {
    c.exec("INSERT INTO t VALUES (" + std::to_string(i) + ", " + std::to_string(i * 10) + ")");
  }
  ASSERT_TRUE(wait_until(
      [&] {
        return servers()
                   .target
                   .exec(
                       "SELECT count(*) FROM pg_stat_activity WHERE "
                       "application_name = 'pgshift-mirror' AND wait_event_type = 'Lock'",
                       "mpipe")
                   .scalar() == "1";
      },
      30s, "the first replay waits on the lock"));
  EXPECT_EQ(number(mirror_status(proxy, "mpipe"), "queued"), 10);  // 2..10 wait behind it
  blocker.exec("COMMIT");
  ASSERT_TRUE(wait_until([&] { return number(mirror_status(proxy, "mpipe"), "queued") == 0; }, 30s,
                         "the queue drains"));
  auto m = mirror_status(proxy, "mpipe");
  EXPECT_EQ(number(m, "divergences"), 1) << boost::json::serialize(m);
  EXPECT_EQ(number(m, "applied") - applied_before, 9) << boost::json::serialize(m);
  auto errors = metric_value(fetch_metrics(proxy), "pgshift_mirror_divergences_total",
                             {{"route", "mpipe"}, {"kind", "error"}});
  EXPECT_EQ(errors.value_or(0), 1);
  std::ifstream journal(std::string(m.at("journal").as_string()));
  std::string line;
  std::vector<boost::json::object> entries;
  while (std::getline(journal, line)) {
    auto e = boost::json::parse(line).as_object();
    if (e.at("route") == "mpipe") entries.push_back(e);
  }
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].at("kind"), "error");
  EXPECT_EQ(entries[0].at("statement"), "INSERT INTO t VALUES (5, 50)");
  EXPECT_EQ(entries[0].at("authoritative").as_array().at(0), "INSERT 0 1");
  EXPECT_EQ(entries[0].at("replay").as_array().at(0), "ERROR 23505");
  // Everything else is on the target; row 5 is the one written behind pgshift's back.
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM t WHERE id <> 5", "mpipe").scalar(), "9");
  EXPECT_EQ(servers().target.exec("SELECT sum(v) FROM t WHERE id <> 5", "mpipe").scalar(), "500");
  EXPECT_EQ(servers().target.exec("SELECT v FROM t WHERE id = 5", "mpipe").scalar(), "-1");
  // The replay goes on after it (on a new connection).
  c.exec("INSERT INTO t VALUES (11, 110)");
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mpipe"); }, 30s, "the mirror drains"));
  EXPECT_EQ(servers().target.exec("SELECT v FROM t WHERE id = 11", "mpipe").scalar(), "110");
}

// A pipelined run cut by the server (FATAL, as at a shutdown) in its middle: the
// transactions answered before stay applied, the rest run again from the first unanswered
// one on a new connection, each exactly once.
TEST(MirrorOutage, AFatalInsideAPipelinedRunReplaysFromTheFirstUnansweredOnce) {
  create_db_both("mfatal");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)", "mfatal");
    c->exec("CREATE TABLE gate (id int)", "mfatal");
  }
  servers().source.exec("INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g", "mfatal");
  PgshiftProcess proxy(proxy_options(config_yaml("mfatal")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mfatal"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mfatal"); }, 30s, "the mirror drains"));
  const auto applied_before = number(mirror_status(proxy, "mfatal"), "applied");
  auto mirror_waits = [&] {
    return servers()
               .target
               .exec(
                   "SELECT count(*) FROM pg_stat_activity WHERE "
                   "application_name = 'pgshift-mirror' AND wait_event_type = 'Lock'",
                   "mfatal")
               .scalar() == "1";
  };
  // The first replay waits on a table lock while ten updates queue behind it.
  PgConnection table_lock(servers().target.conninfo({}, std::nullopt, "mfatal"));
  table_lock.exec("BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE");
  PgConnection c(proxy.conninfo("postgres", kPassword, "mfatal"));
  c.exec("INSERT INTO gate VALUES (0)");
  ASSERT_TRUE(wait_until(mirror_waits, 30s, "the first replay waits on the table lock"));
  for (int i = 1; i <= 10; ++i) c.exec("UPDATE t SET v = v + 1 WHERE id = " + std::to_string(i));
  // Row 5 locked on the target: of the ten sent back to back, 1..4 apply, 5 waits.
  PgConnection row_lock(servers().target.conninfo({}, std::nullopt, "mfatal"));
  row_lock.exec("BEGIN; SELECT * FROM t WHERE id = 5 FOR UPDATE");
  table_lock.exec("COMMIT");
  ASSERT_TRUE(wait_until(
      [&] { return number(mirror_status(proxy, "mfatal"), "applied") == applied_before + 5; }, 30s,
      "the gate and updates 1..4 apply"));
  ASSERT_TRUE(wait_until(mirror_waits, 30s, "update 5 waits on the row lock"));
  servers().target.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
      "application_name = 'pgshift-mirror'",
      "mfatal");
  ASSERT_TRUE(wait_until(mirror_waits, 30s, "update 5 runs again and waits again"));
  row_lock.exec("COMMIT");
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mfatal"); }, 30s, "the mirror drains"));
  auto m = mirror_status(proxy, "mfatal");
  EXPECT_EQ(number(m, "divergences"), 0) << boost::json::serialize(m) << proxy.log();
  EXPECT_EQ(number(m, "applied") - applied_before, 11) << boost::json::serialize(m);
  // Every update applied exactly once.
  EXPECT_EQ(servers()
                .target.exec("SELECT string_agg(v::text, ',' ORDER BY id) FROM t", "mfatal")
                .scalar(),
            "1,1,1,1,1,1,1,1,1,1");
}

// A client that leaves while its write waits for an answer: whether the write committed is
// unknown to the sidecar, so it is recorded (kind in_doubt), never silently skipped.
TEST(MirrorDivergence, AWriteLeftWithoutItsAnswerIsRecordedInDoubt) {
  create_db_both("mdoubt");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE t (id int PRIMARY KEY, v int)", "mdoubt");
  }
  servers().source.exec("INSERT INTO t VALUES (1, 0)", "mdoubt");
  PgshiftProcess proxy(proxy_options(config_yaml("mdoubt")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mdoubt"}).exit_code, 0) << proxy.log();
  PgConnection blocker(servers().source.conninfo({}, std::nullopt, "mdoubt"));
  blocker.exec("BEGIN; SELECT * FROM t WHERE id = 1 FOR UPDATE");
  {
    PgConnection c(proxy.conninfo("postgres", kPassword, "mdoubt"));
    ASSERT_EQ(PQsendQuery(c.native(), "UPDATE t SET v = v + 1 WHERE id = 1"), 1);
    ASSERT_TRUE(wait_until(
        [&] {
          return servers()
                     .source
                     .exec(
                         "SELECT count(*) FROM pg_stat_activity WHERE "
                         "wait_event_type = 'Lock' AND query LIKE 'UPDATE t%'",
                         "mdoubt")
                     .scalar() == "1";
        },
        30s, "the update waits on the lock"));
  }  // the client leaves without its answer
  ASSERT_TRUE(wait_until(
      [&] {
        return metric_value(fetch_metrics(proxy), "pgshift_mirror_divergences_total",
                            {{"route", "mdoubt"}, {"kind", "in_doubt"}})
                   .value_or(0) == 1;
      },
      30s, "an in_doubt divergence"));
  blocker.exec("COMMIT");
}

TEST(MirrorOutage, TargetDownInAsyncModeQueuesAndCatchesUp) {
  create_db_both("mdown");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE ledger (id int PRIMARY KEY, note text)", "mdown");
  }
  PgshiftProcess proxy(proxy_options(config_yaml("mdown")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mdown"}).exit_code, 0) << proxy.log();
  PgConnection c(proxy.conninfo("postgres", kPassword, "mdown"));
  c.exec("INSERT INTO ledger VALUES (0, 'before')");
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mdown"); }, 30s, "the mirror drains"));
  servers().target.stop();
  for (int i = 1; i <= 200; ++i) {
    c.exec("INSERT INTO ledger VALUES (" + std::to_string(i) + ", 'while the target is down')");
  }
  auto down = mirror_status(proxy, "mdown");
  EXPECT_GT(number(down, "queued"), 0) << boost::json::serialize(down);
  servers().target.start();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mdown"); }, 60s, "the queue drains"));
  EXPECT_EQ(number(mirror_status(proxy, "mdown"), "divergences"), 0) << proxy.log();
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM ledger", "mdown").scalar(), "201");
  EXPECT_EQ(run_pgshift(proxy, {"verify", "mdown"}).exit_code, 0);
}

// ack: sync with overflow block: a commit returns only once the mirror committed it too;
// while the target is down the client waits, and goes on when it returns.
TEST(MirrorAckSync, ACommitReturnsOnlyOnceTheTargetHasIt) {
  create_db_both("mack");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE ledger (id int PRIMARY KEY)", "mack");
  }
  PgshiftProcess proxy(proxy_options(config_yaml("mack", "  mirror:\n    ack: sync\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mack"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mack"); }, 30s, "the mirror streams"));
  PgConnection c(proxy.conninfo("postgres", kPassword, "mack"));
  for (int i = 1; i <= 20; ++i) {
    c.exec("INSERT INTO ledger VALUES (" + std::to_string(i) + ")");
    // Acknowledged: already on the target.
    ASSERT_EQ(servers().target.exec("SELECT count(*) FROM ledger", "mack").scalar(),
              std::to_string(i));
  }
  servers().target.stop();
  std::atomic<bool> returned{false};
  std::string seen_on_target;
  std::thread writer([&] {
    c.exec("INSERT INTO ledger VALUES (21)");
    returned = true;
  });
  ASSERT_TRUE(wait_until(
      [&] {
        return servers().source.exec("SELECT count(*) FROM ledger", "mack").scalar() == "21" &&
               number(mirror_status(proxy, "mack"), "queued") == 1;
      },
      30s, "committed on the source, queued for the mirror"));
  EXPECT_FALSE(returned.load()) << "the commit was acknowledged while the target was down";
  servers().target.start();
  writer.join();
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM ledger WHERE id = 21", "mack").scalar(),
            "1");
  EXPECT_EQ(number(mirror_status(proxy, "mack"), "divergences"), 0);
}

TEST(MirrorOverflow, MarkDivergedStopsMirroringAndSaysWhatToDo) {
  create_db_both("mover");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE blobs (id int PRIMARY KEY, data text)", "mover");
  }
  PgshiftProcess proxy(proxy_options(config_yaml(
      "mover", "  mirror:\n    max_queue_bytes: 1048576\n    overflow: mark_diverged\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mover"}).exit_code, 0) << proxy.log();
  servers().target.stop();  // nothing drains
  PgConnection c(proxy.conninfo("postgres", kPassword, "mover"));
  const std::string big(100000, 'x');  // in the statement: the queue holds its bytes
  for (int i = 1; i <= 20; ++i) {
    c.exec("INSERT INTO blobs VALUES (" + std::to_string(i) + ", '" + big + "')");
  }
  // Nothing was lost on the source, and the client saw no error.
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM blobs", "mover").scalar(), "20");
  auto m = mirror_status(proxy, "mover");
  EXPECT_EQ(m.at("mirroring"), false) << boost::json::serialize(m);
  EXPECT_EQ(m.at("diverged"), true);
  EXPECT_EQ(m.at("state"), "diverged");
  auto overflow = metric_value(fetch_metrics(proxy), "pgshift_mirror_divergences_total",
                               {{"route", "mover"}, {"kind", "overflow"}});
  EXPECT_EQ(overflow.value_or(0), 1);
  auto status = run_pgshift(proxy, {"sync", "status", "mover"});
  EXPECT_NE(status.out.find("mirroring is STOPPED"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("pgshift sync start"), std::string::npos) << status.out;
  servers().target.start();
}

// The same outage with a spool: what the memory queue cannot hold spills to
// sync.mirror.spool_dir instead of diverging, and comes back in order when the target does.
TEST(MirrorOverflow, AFullMemoryQueueSpillsToTheSpoolAndDrainsInOrder) {
  create_db_both("mspool");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE blobs (id int PRIMARY KEY, data text)", "mspool");
  }
  PgshiftProcess proxy(proxy_options(config_yaml("mspool",
                                                 "  mirror:\n    max_queue_bytes: 1048576\n"
                                                 "    overflow: mark_diverged\n"
                                                 "    spool_dir: spool\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mspool"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mspool"); }, 30s, "the mirror streams"));
  servers().target.stop();  // nothing drains
  PgConnection c(proxy.conninfo("postgres", kPassword, "mspool"));
  const std::string big(100000, 'x');  // 40 x 100 kB: four times the memory queue
  for (int i = 1; i <= 40; ++i) {
    c.exec("INSERT INTO blobs VALUES (" + std::to_string(i) + ", '" + big + "')");
  }
  // The last one overwrites the first: replayed out of order, the target would differ.
  c.exec("UPDATE blobs SET data = 'last' WHERE id = 1");
  auto m = mirror_status(proxy, "mspool");
  EXPECT_EQ(m.at("mirroring"), true) << boost::json::serialize(m);
  EXPECT_EQ(number(m, "queued"), 41) << boost::json::serialize(m);
  EXPECT_GT(number(m, "spooled"), 20) << boost::json::serialize(m);
  const std::string file =
      m.contains("spool_file") ? std::string(m.at("spool_file").as_string()) : std::string();
  ASSERT_FALSE(file.empty()) << boost::json::serialize(m);
  EXPECT_GT(std::filesystem::file_size(file), 2'000'000u);
  auto spooled =
      metric_value(fetch_metrics(proxy), "pgshift_mirror_spool_bytes", {{"route", "mspool"}});
  EXPECT_GT(spooled.value_or(0), 2'000'000);

  servers().target.start();
  ASSERT_TRUE(wait_until([&] { return drained(proxy, "mspool"); }, 60s, "the spool drains"));
  m = mirror_status(proxy, "mspool");
  EXPECT_EQ(number(m, "divergences"), 0) << boost::json::serialize(m);
  EXPECT_EQ(number(m, "spooled"), 0);
  EXPECT_EQ(std::filesystem::file_size(file), 0u) << "the drained spool gives its space back";
  EXPECT_EQ(servers().target.exec("SELECT data FROM blobs WHERE id = 1", "mspool").scalar(),
            "last");
  auto verify = run_pgshift(proxy, {"verify", "mspool"});
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  // sync stop: the fleet moves the route to source_only; nothing is mirrored after it.
  auto stop = run_pgshift(proxy, {"sync", "stop", "mspool"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_NE(stop.out.find("no transaction is mirrored from here on"), std::string::npos)
      << stop.out;
  EXPECT_TRUE(wait_until([&] { return mirror_status(proxy, "mspool").at("state") == "off"; }, 10s,
                         "the mirror turns off"));
}

// The sidecar running `sync start` dies (SIGKILL) in the middle of the copy: the route is left
// in phase sync with the copy pending. `pgshift ctl recover` through another sidecar refuses
// while the copy's heartbeat is fresh, then turns mirroring off and empties the target's
// tables; a new `sync start` then completes and verify is equal.
TEST(MirrorRecover, AStartWhoseSidecarDiedDuringTheCopyIsUndoneAndCanStartAgain) {
  create_db_both("mrecover");
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("CREATE TABLE big (id int PRIMARY KEY, note text)", "mrecover");
  }
  servers().source.exec("INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 5000) g",
                        "mrecover");
  const std::string yaml = config_yaml("mrecover", "", "transaction", "{poll_ms: 250}");
  auto a = std::make_unique<PgshiftProcess>(proxy_options(yaml));
  // The copy into the target waits on this lock: the kill lands inside the copy.
  PgConnection lock(servers().target.conninfo({}, std::nullopt, "mrecover"));
  lock.exec("BEGIN");
  lock.exec("LOCK TABLE big IN SHARE MODE");  // reads pass, the COPY waits
  Process start(ProcessOptions{.argv = {pgshift_binary().string(), "sync", "start", "mrecover",
                                        "--config", a->config_file().string()},
                               .merge_output = true});
  ASSERT_TRUE(wait_until(
      [&] {
        return servers()
                   .target
                   .exec(
                       "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %big%'"
                       " AND wait_event_type = 'Lock'",
                       "mrecover")
                   .scalar() == "1";
      },
      30s, "the copy waits on the target's lock"));
  a->send_signal(SIGKILL);
  ASSERT_TRUE(start.wait_for(30s).has_value());
  lock.exec("ROLLBACK");

  PgshiftProcess b(proxy_options(yaml));
  auto ctl = [&](const std::string& kind) {
    return run_command({pgshift_binary().string(), "ctl", "--url",
                        "http://127.0.0.1:" + std::to_string(b.admin_port()), "--token-file",
                        b.admin_token_file().string(), kind, "mrecover"},
                       60s);
  };
  CommandResult rec = ctl("recover");
  EXPECT_NE(rec.out.find("is running: its coordinator wrote a heartbeat"), std::string::npos)
      << rec.describe();
  ASSERT_TRUE(wait_until(
      [&] {
        rec = ctl("recover");
        return rec.out.find("is running") == std::string::npos;
      },
      30s, "the copy's heartbeat goes stale"));
  ASSERT_EQ(rec.exit_code, 0) << rec.describe() << b.log();
  EXPECT_NE(rec.out.find("mirror_off"), std::string::npos) << rec.out;
  EXPECT_NE(rec.out.find("both databases as before the interrupted sync start"), std::string::npos)
      << rec.out;
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM big", "mrecover").scalar(), "0");
  EXPECT_EQ(
      servers().target.exec("SELECT count(*) FROM pgshift.mirror_copies", "mrecover").scalar(),
      "0");
  EXPECT_TRUE(wait_until([&] { return mirror_status(b, "mrecover").at("state") == "off"; }, 10s,
                         "the sidecar stops mirroring"));

  auto again = run_pgshift(b, {"sync", "start", "mrecover"});
  ASSERT_EQ(again.exit_code, 0) << again.describe() << b.log();
  ASSERT_TRUE(wait_until([&] { return drained(b, "mrecover"); }, 30s, "the mirror streams"));
  EXPECT_EQ(run_pgshift(b, {"verify", "mrecover"}).exit_code, 0);
}

}  // namespace
}  // namespace pgshift::test
