// Mirrored writes end to end (issue 12, sync.mode mirror) against two real PostgreSQL 15
// clusters, part 1: the flow and divergences. `pgshift sync start` in mirror mode under
// pgbench TPC-B through pgshift (fleet hold, exported snapshot, COPY, replay of everything
// committed after the hold), two sidecars at once, the extended protocol, prepared
// statements, binary parameters, savepoints and COPY replayed exactly, read-your-writes, and
// divergences (a row changed behind pgshift's back, an error inside a pipelined run or inside
// a transaction replayed as one Query, a write left in doubt) in the journal. "No lost writes" is
// checked the way a user would: pgshift verify says source = target. Outages, overflow and recover:
// mirror_outage_test.cpp.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>

#include "tests/integration/mirror_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

// The last statement the mirror's connection ran on the target database `db`.
std::string mirror_last_statement(const std::string& db) {
  const std::string sql =
      "SELECT query FROM pg_stat_activity WHERE application_name = 'pgshift-mirror' AND "
      "datname = '" +
      db + "'";
  return servers().target.exec(sql, db).scalar();
}

// The divergence journal's entries of `route` (its path is in the mirror status `m`).
std::vector<boost::json::object> journal_entries(const boost::json::object& m,
                                                 const std::string& route) {
  std::ifstream journal(std::string(m.at("journal").as_string()));
  std::string line;
  std::vector<boost::json::object> entries;
  while (std::getline(journal, line)) {
    auto e = boost::json::parse(line).as_object();
    if (e.at("route").as_string() == route) entries.push_back(e);
  }
  return entries;
}

TEST(MirrorFlow, StartUnderPgbenchReplaysEverythingAndVerifyIsEqual) {
  create_db_both("mbench");
  auto init = init_pgbench("mbench");
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
  ASSERT_TRUE(
      wait_until([&] { return json_number(mirror_status(proxy, "mbench"), "applied") > 100; }, 60s,
                 "the mirror applies transactions"));
  // pgbench ends by itself (a client killed in the middle of its COMMIT would leave that
  // transaction in doubt, recorded as a divergence: see docs/sync.md).
  auto exit = bench.wait_for(120s);
  ASSERT_TRUE(exit.has_value() && exit->shell_code() == 0) << "pgbench failed";
  ASSERT_TRUE(
      wait_until([&] { return mirror_drained(proxy, "mbench"); }, 60s, "the mirror drains"));
  const auto m = mirror_status(proxy, "mbench");
  EXPECT_EQ(json_number(m, "divergences"), 0) << boost::json::serialize(m);

  // pgbench_history takes CURRENT_TIMESTAMP, which a replay cannot reproduce: it is flagged
  // (and verify would find it); everything else must be equal.
  auto unsafe = metric_value(fetch_metrics(proxy), "pgshift_mirror_unsafe_total",
                             {{"route", "mbench"}, {"reason", "volatile_function"}});
  EXPECT_GT(unsafe.value_or(0), 0);
  expect_verify_equal(proxy, "mbench",
                      {"--tables", "pgbench_accounts,pgbench_branches,pgbench_tellers"});
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM pgbench_history", "mbench").scalar(),
            servers().target.exec("SELECT count(*) FROM pgbench_history", "mbench").scalar());
}

// Two sidecars of one fleet (control: target): the start holds both, each mirrors its own
// clients' commits, and TPC-B through both at once ends equal (its updates add to balances:
// the order between sidecars does not change the result; see docs/sync.md for the limit).
TEST(MirrorFlow, TwoSidecarsWritingAtOnceEndEqual) {
  create_db_both("mtwo");
  auto init = init_pgbench("mtwo");
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
        return json_number(mirror_status(a, "mtwo"), "applied") > 50 &&
               json_number(mirror_status(b, "mtwo"), "applied") > 50;
      },
      60s, "both sidecars replay"));
  for (Process* p : {&ba, &bb}) {
    auto exit = p->wait_for(120s);
    ASSERT_TRUE(exit.has_value() && exit->shell_code() == 0) << "pgbench failed";
  }
  ASSERT_TRUE(wait_until([&] { return mirror_drained(a, "mtwo") && mirror_drained(b, "mtwo"); },
                         60s, "both mirrors drain"));
  EXPECT_EQ(json_number(mirror_status(a, "mtwo"), "divergences"), 0);
  EXPECT_EQ(json_number(mirror_status(b, "mtwo"), "divergences"), 0);
  expect_verify_equal(a, "mtwo", {"--tables", "pgbench_accounts,pgbench_branches,pgbench_tellers"});
}

TEST(MirrorFlow, ExtendedProtocolPreparedSavepointsAndCopyReplayExactly) {
  create_db_both("mexact", "CREATE TABLE kv (k int PRIMARY KEY, v text, b bytea)");
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
  ASSERT_TRUE(
      wait_until([&] { return mirror_drained(proxy, "mexact"); }, 60s, "the mirror drains"));
  EXPECT_EQ(servers().target.exec("SELECT v FROM kv WHERE k = 200", "mexact").scalar(),
            "2024-01-01 00:00:00+13");
  EXPECT_EQ(json_number(mirror_status(proxy, "mexact"), "divergences"), 0) << proxy.log();
  EXPECT_EQ(
      servers()
          .target.exec("SELECT string_agg(k || v, ',' ORDER BY k) FROM kv WHERE k < 100", "mexact")
          .scalar(),
      "1one,2two,3THREE,5five,6seven,7seven");
  expect_verify_equal(proxy, "mexact");
}

// Read your writes with the mirror: while the replay of key 42's write is held up on the
// target, key 42 reads from the source (it sees its write), another key reads the target
// (split at 100 %, within max_lag_ms); once replayed, everyone reads the new value there.
TEST(MirrorReads, AKeyReadsItsWritesOnlyOnceTheMirrorAppliedThem) {
  create_db_both("mryw", "CREATE TABLE kv (k int PRIMARY KEY, v text)");
  servers().source.exec("INSERT INTO kv VALUES (1, 'old')", "mryw");
  PgshiftProcess proxy(proxy_options(
      config_yaml("mryw", "read_split:\n  initial_read_percent: 100\n  max_lag_ms: 600000\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mryw"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mryw"); }, 30s, "the mirror drains"));
  PgConnection c(proxy.conninfo("postgres", kPassword, "mryw"));
  auto read = [&](const std::string& key) {
    return c.exec("/* user_id='" + key + "' */ SELECT v FROM kv WHERE k = 1").scalar();
  };
  ASSERT_TRUE(wait_until([&] { return read("7") == "old"; }, 30s, "split reads reach the target"));

  PgConnection blocker(servers().target.conninfo({}, std::nullopt, "mryw"));
  blocker.exec("BEGIN; SELECT * FROM kv WHERE k = 1 FOR UPDATE");  // the replay waits on it
  c.exec("/* user_id='42' */ UPDATE kv SET v = 'new' WHERE k = 1");
  ASSERT_TRUE(wait_until([&] { return replay_waits_on_lock("mryw"); }, 30s,
                         "the replay waits on the row lock"));
  EXPECT_EQ(read("42"), "new");  // its own write: from the source
  EXPECT_EQ(read("7"), "old");   // another key: the target, not caught up yet
  blocker.exec("COMMIT");
  ASSERT_TRUE(wait_until([&] { return read("7") == "new"; }, 30s, "the target caught up"));
  EXPECT_EQ(read("42"), "new");
}

TEST(MirrorDivergence, ARowChangedOnTheTargetIsJournaledWithBothResults) {
  create_db_both("mdiv", "CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL)");
  servers().source.exec("INSERT INTO accounts SELECT g, 100 FROM generate_series(1, 10) g", "mdiv");
  PgshiftProcess proxy(proxy_options(config_yaml("mdiv")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mdiv"}).exit_code, 0) << proxy.log();
  PgConnection c(proxy.conninfo("postgres", kPassword, "mdiv"));
  c.exec("UPDATE accounts SET balance = balance + 1 WHERE id = 1");
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mdiv"); }, 30s, "the mirror drains"));
  servers().target.exec("DELETE FROM accounts WHERE id = 2", "mdiv");  // behind pgshift's back
  c.exec("UPDATE accounts SET balance = balance + 1 WHERE id = 2");
  ASSERT_TRUE(
      wait_until([&] { return json_number(mirror_status(proxy, "mdiv"), "divergences") == 1; }, 30s,
                 "one divergence"));
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
  create_db_both("mpipe", "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL)");
  PgshiftProcess proxy(proxy_options(config_yaml("mpipe")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mpipe"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mpipe"); }, 30s, "the mirror drains"));
  const auto applied_before = json_number(mirror_status(proxy, "mpipe"), "applied");
  servers().target.exec("INSERT INTO t VALUES (5, -1)", "mpipe");  // behind pgshift's back
  PgConnection blocker(servers().target.conninfo({}, std::nullopt, "mpipe"));
  blocker.exec("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
  PgConnection c(proxy.conninfo("postgres", kPassword, "mpipe"));
  for (int i = 1; i <= 10; ++i) {
    c.exec("INSERT INTO t VALUES (" + std::to_string(i) + ", " + std::to_string(i * 10) + ")");
  }
  ASSERT_TRUE(wait_until([&] { return replay_waits_on_lock("mpipe"); }, 30s,
                         "the first replay waits on the lock"));
  EXPECT_EQ(json_number(mirror_status(proxy, "mpipe"), "queued"), 10);  // 2..10 wait behind it
  blocker.exec("COMMIT");
  ASSERT_TRUE(wait_until([&] { return json_number(mirror_status(proxy, "mpipe"), "queued") == 0; },
                         30s, "the queue drains"));
  auto m = mirror_status(proxy, "mpipe");
  EXPECT_EQ(json_number(m, "divergences"), 1) << boost::json::serialize(m);
  EXPECT_EQ(json_number(m, "applied") - applied_before, 9) << boost::json::serialize(m);
  auto errors = metric_value(fetch_metrics(proxy), "pgshift_mirror_divergences_total",
                             {{"route", "mpipe"}, {"kind", "error"}});
  EXPECT_EQ(errors.value_or(0), 1);
  const auto entries = journal_entries(m, "mpipe");
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
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mpipe"); }, 30s, "the mirror drains"));
  EXPECT_EQ(servers().target.exec("SELECT v FROM t WHERE id = 11", "mpipe").scalar(), "110");
}

// An explicit transaction sent as separate Queries (BEGIN, statements, COMMIT: psycopg2,
// pgbench -M simple) is replayed as one Query of its statements, which the target runs as one
// implicit transaction. One of them fails there: it is rolled back whole, as it would have
// been statement by statement, journaled with the same answers, and the transactions
// pipelined behind it still apply.
TEST(MirrorDivergence, AJoinedTransactionFailingOnTheTargetIsRolledBackWholeTheRestApply) {
  create_db_both("mjoin",
                 "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL);"
                 "CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL)");
  servers().source.exec("INSERT INTO counter VALUES (1, 0)", "mjoin");  // copied by sync start
  PgshiftProcess proxy(proxy_options(config_yaml("mjoin")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mjoin"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mjoin"); }, 30s, "the mirror drains"));
  servers().target.exec("INSERT INTO t VALUES (3, -1)", "mjoin");  // behind pgshift's back
  PgConnection blocker(servers().target.conninfo({}, std::nullopt, "mjoin"));
  blocker.exec("BEGIN; LOCK TABLE t IN ACCESS EXCLUSIVE MODE");
  PgConnection c(proxy.conninfo("postgres", kPassword, "mjoin"));
  for (int i = 1; i <= 6; ++i) {
    c.exec("BEGIN");
    c.exec("UPDATE counter SET n = n + 1 WHERE id = 1");
    c.exec("INSERT INTO t VALUES (" + std::to_string(i) + ", " + std::to_string(i * 10) + ")");
    c.exec("COMMIT");
  }
  ASSERT_TRUE(wait_until([&] { return replay_waits_on_lock("mjoin"); }, 30s,
                         "the first replay waits on the lock"));
  blocker.exec("COMMIT");
  ASSERT_TRUE(wait_until([&] { return json_number(mirror_status(proxy, "mjoin"), "queued") == 0; },
                         30s, "the queue drains"));
  auto m = mirror_status(proxy, "mjoin");
  EXPECT_EQ(json_number(m, "divergences"), 1) << boost::json::serialize(m);
  const auto entries = journal_entries(m, "mjoin");
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].at("kind"), "error");
  EXPECT_EQ(boost::json::serialize(entries[0].at("authoritative")),
            R"(["BEGIN","UPDATE 1","INSERT 0 1","COMMIT"])");
  EXPECT_EQ(boost::json::serialize(entries[0].at("replay")),
            R"(["BEGIN","UPDATE 1","ERROR 23505","ROLLBACK"])");
  // The failed one's UPDATE was rolled back with it; the five others applied whole.
  EXPECT_EQ(servers().target.exec("SELECT n FROM counter", "mjoin").scalar(), "5");
  EXPECT_EQ(servers().target.exec("SELECT sum(v) FROM t WHERE id <> 3", "mjoin").scalar(), "180");
  EXPECT_EQ(servers().target.exec("SELECT v FROM t WHERE id = 3", "mjoin").scalar(), "-1");
  // Joined: the mirror connection's last statement on the target is the one Query.
  c.exec("BEGIN");
  c.exec("UPDATE counter SET n = n + 1 WHERE id = 1");
  c.exec("INSERT INTO t VALUES (7, 70)");
  c.exec("END");
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mjoin"); }, 30s, "the mirror drains"));
  EXPECT_EQ(mirror_last_statement("mjoin"),
            "UPDATE counter SET n = n + 1 WHERE id = 1\n;INSERT INTO t VALUES (7, 70)");
  EXPECT_EQ(servers().target.exec("SELECT n FROM counter", "mjoin").scalar(), "6");
  // The extended protocol (libpq PQexecParams: Parse, Bind, Describe, Execute, Sync each):
  // joined too, one Sync at the end; a failure rolls it back whole there as well.
  servers().target.exec("INSERT INTO t VALUES (9, -1)", "mjoin");  // behind pgshift's back
  for (int id : {8, 9}) {
    c.exec_params("BEGIN", {});
    c.exec_params("UPDATE counter SET n = n + 1 WHERE id = $1", {"1"});
    c.exec_params("INSERT INTO t VALUES ($1, $2)", {std::to_string(id), std::to_string(id * 10)});
    c.exec_params("COMMIT", {});
    ASSERT_TRUE(
        wait_until([&] { return mirror_drained(proxy, "mjoin"); }, 30s, "the mirror drains"));
    if (id == 8) {
      // Joined, the last statement the target ran for it is the INSERT, not the COMMIT.
      EXPECT_EQ(mirror_last_statement("mjoin"), "INSERT INTO t VALUES ($1, $2)") << proxy.log();
    }
  }
  EXPECT_EQ(json_number(mirror_status(proxy, "mjoin"), "divergences"), 2);
  EXPECT_EQ(servers().target.exec("SELECT v FROM t WHERE id = 8", "mjoin").scalar(), "80");
  EXPECT_EQ(servers().target.exec("SELECT v FROM t WHERE id = 9", "mjoin").scalar(), "-1");
  EXPECT_EQ(servers().target.exec("SELECT n FROM counter", "mjoin").scalar(), "7");  // not 8
  EXPECT_EQ(servers().source.exec("SELECT n FROM counter", "mjoin").scalar(), "9");
}

// A client that leaves while its write waits for an answer: whether the write committed is
// unknown to the sidecar, so it is recorded (kind in_doubt), never silently skipped.
TEST(MirrorDivergence, AWriteLeftWithoutItsAnswerIsRecordedInDoubt) {
  create_db_both("mdoubt", "CREATE TABLE t (id int PRIMARY KEY, v int)");
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

}  // namespace
}  // namespace pgshift::test
