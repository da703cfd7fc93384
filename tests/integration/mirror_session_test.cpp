// Mirrored writes and the sessions' settings (issue 12; docs/sync.md "Mirror mode", "Session
// settings"), against two real PostgreSQL 15 clusters: the replay of a transaction runs with
// the settings its session had (startup `options`, SET, SET TIME ZONE, RESET, SET LOCAL,
// a SET replayed inside a transaction), on one replay connection shared by every session;
// and overflow `block`: write transactions wait while the queue is full and go on as soon
// as the replay makes room. Checked as a user would: rows in the right schema on the target,
// `pgshift verify` equal.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <thread>

#include "tests/integration/mirror_support.hpp"
#include "tests/support/pgshift_cli.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

// Each schema's rows on `c`, as "schema:ids" joined by spaces.
std::string rows_by_schema(PgCluster& c, const std::string& db) {
  return c
      .exec(
          "SELECT string_agg(s || ':' || ids, ' ' ORDER BY s) FROM ("
          " SELECT 'public' s, string_agg(id::text, ',' ORDER BY id) ids FROM public.t"
          " UNION ALL SELECT 's1', string_agg(id::text, ',' ORDER BY id) FROM s1.t"
          " UNION ALL SELECT 's2', string_agg(id::text, ',' ORDER BY id) FROM s2.t) x",
          db)
      .scalar();
}

// The route's mirror has replayed everything, and nothing diverged.
void expect_drained_without_divergence(const PgshiftProcess& proxy, const std::string& db) {
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, db); }, 30s, "the mirror drains"));
  EXPECT_EQ(json_number(mirror_status(proxy, db), "divergences"), 0) << proxy.log();
}

constexpr const char* kSchemas =
    "CREATE SCHEMA s1; CREATE SCHEMA s2;"
    " CREATE TABLE public.t (id int PRIMARY KEY, at timestamptz);"
    " CREATE TABLE s1.t (id int PRIMARY KEY, at timestamptz);"
    " CREATE TABLE s2.t (id int PRIMARY KEY, at timestamptz)";

// search_path from the startup `options`, from a SET made before the mirror started, from a
// SET made while it runs, RESET back to the startup value, RESET ALL, SET LOCAL, and a SET
// replayed inside a write transaction: interleaved on one replay connection, every row lands
// in the schema it landed in on the source.
TEST(MirrorSession, SearchPathFromStartupSetResetAndSetLocalReplayIntoTheSameSchema) {
  const std::string db = "msearch";
  create_db_both(db, kSchemas);
  PgshiftProcess proxy(proxy_options(config_yaml(db)));
  // Set before the mirror starts: the session's settings are followed from its first SET.
  PgConnection early(proxy.conninfo("postgres", kPassword, db));
  early.exec("SET search_path TO s2");
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", db}).exit_code, 0) << proxy.log();

  PgConnection startup(proxy.conninfo("postgres", kPassword, db, "options='-c search_path=s1'"));
  PgConnection plain(proxy.conninfo("postgres", kPassword, db));
  PgConnection setter(proxy.conninfo("postgres", kPassword, db, "options='-c search_path=s1'"));
  setter.exec("SET search_path = s2, public");
  for (int i = 0; i < 3; ++i) {  // interleaved: the replay connection switches every time
    const std::string n = std::to_string(i);
    startup.exec("INSERT INTO t (id) VALUES (1" + n + ")");
    plain.exec("INSERT INTO t (id) VALUES (2" + n + ")");
    setter.exec("INSERT INTO t (id) VALUES (3" + n + ")");
    early.exec("INSERT INTO t (id) VALUES (4" + n + ")");
  }
  setter.exec("RESET search_path");  // back to its startup value, s1
  setter.exec_params("INSERT INTO t (id) VALUES ($1)", {"50"});
  setter.exec("SET search_path TO s2");
  setter.exec("RESET ALL");  // also the startup value
  setter.exec("INSERT INTO t (id) VALUES (51)");
  // A failed SET and a rolled-back one change nothing.
  EXPECT_THROW(setter.exec("SET search_path TO s2; SELECT 1/0"), std::exception);
  setter.exec("BEGIN; SET search_path TO s2; ROLLBACK");
  setter.exec("INSERT INTO t (id) VALUES (52)");
  // SET LOCAL lasts for its transaction only; it is replayed inside it.
  plain.exec("BEGIN; SET LOCAL search_path TO s1; INSERT INTO t (id) VALUES (60); COMMIT");
  plain.exec("INSERT INTO t (id) VALUES (61)");
  // A SET inside a replayed write transaction: the replay connection is reset after it, so
  // the next session's statement (one that never set anything) is not affected.
  plain.exec(
      "INSERT INTO t (id) VALUES (70); SET search_path TO s2; INSERT INTO t (id) VALUES (71)");
  PgConnection fresh(proxy.conninfo("postgres", kPassword, db));
  fresh.exec("INSERT INTO t (id) VALUES (72)");
  plain.exec("INSERT INTO t (id) VALUES (73)");
  // A session setting in a committed explicit transaction takes effect at its commit.
  early.exec("BEGIN; SET search_path TO s1; INSERT INTO t (id) VALUES (80); COMMIT");
  early.exec("INSERT INTO t (id) VALUES (81)");

  const std::string expected =
      "public:20,21,22,61,70,72 s1:10,11,12,50,51,52,60,80,81 s2:30,31,32,40,41,42,71,73";
  ASSERT_EQ(rows_by_schema(servers().source, db), expected);
  expect_drained_without_divergence(proxy, db);
  EXPECT_EQ(rows_by_schema(servers().target, db), expected);
  expect_verify_equal(proxy, db);
}

// SET TIME ZONE (and SET DateStyle) change how a literal is read: the replay reads it the
// same way (the value comes from the server's ParameterStatus, not from parsing the SET).
TEST(MirrorSession, SetTimeZoneAndDateStyleReadLiteralsTheSameOnTheTarget) {
  const std::string db = "mtz";
  create_db_both(db, kSchemas);
  PgshiftProcess proxy(proxy_options(config_yaml(db)));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", db}).exit_code, 0) << proxy.log();
  PgConnection kolkata(proxy.conninfo("postgres", kPassword, db));
  PgConnection utc(proxy.conninfo("postgres", kPassword, db));
  kolkata.exec("SET TIME ZONE 'Asia/Kolkata'");
  utc.exec("SET TIME ZONE 'UTC'");
  kolkata.exec("INSERT INTO t VALUES (1, '2024-01-01 00:00')");
  utc.exec("INSERT INTO t VALUES (2, '2024-01-01 00:00')");
  kolkata.exec("SET DateStyle = 'SQL, DMY'");
  kolkata.exec("INSERT INTO t VALUES (3, '02/01/2024 00:00')");  // 2 January under DMY
  kolkata.exec("SET TIME ZONE INTERVAL '-03:00' HOUR TO MINUTE");
  kolkata.exec("INSERT INTO t VALUES (4, '2024-01-01 00:00')");
  kolkata.exec("RESET TIME ZONE");  // the source's default, whatever it is
  kolkata.exec("INSERT INTO t VALUES (5, '2024-01-01 00:00')");

  expect_drained_without_divergence(proxy, db);
  const std::string q =
      "SET TimeZone = 'UTC'; SELECT string_agg(id || '=' || to_char(at, 'YYYY-MM-DD HH24:MI'),"
      " ' ' ORDER BY id) FROM t";
  const std::string source = servers().source.exec(q, db).scalar();
  EXPECT_TRUE(source.starts_with(
      "1=2023-12-31 18:30 2=2024-01-01 00:00 3=2024-01-01 18:30 4=2024-01-01 03:00 5="))
      << source;
  EXPECT_EQ(servers().target.exec(q, db).scalar(), source);
  expect_verify_equal(proxy, db);
}

// SET session_replication_role (it would switch the target's triggers and foreign keys off)
// and SET ROLE are not carried: they are flagged.
TEST(MirrorSession, SettingsThatAreNotCarriedAreFlagged) {
  const std::string db = "mflag";
  create_db_both(db, kSchemas);
  PgshiftProcess proxy(proxy_options(config_yaml(db)));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", db}).exit_code, 0) << proxy.log();
  PgConnection c(proxy.conninfo("postgres", kPassword, db));
  c.exec("SET session_replication_role = replica");
  c.exec("INSERT INTO t (id) VALUES (1)");
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, db); }, 30s, "the mirror drains"));
  auto flagged = metric_value(fetch_metrics(proxy), "pgshift_mirror_unsafe_total",
                              {{"route", db}, {"reason", "session_setting"}});
  EXPECT_EQ(flagged.value_or(0), 1);
  EXPECT_TRUE(proxy.wait_for_log("session_replication_role"));
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM t", db).scalar(), "1");
}

// overflow: block. With the target down the queue fills; the next write transaction waits
// (its client sees nothing), and goes on as soon as the target is back and the replay has
// made room (a wakeup from the replay, not a poll).
TEST(MirrorSession, OverflowBlockHoldsWritersUntilTheReplayMakesRoom) {
  const std::string db = "mblock";
  create_db_both(db, "CREATE TABLE blobs (id int PRIMARY KEY, data text)");
  PgshiftProcess proxy(proxy_options(
      config_yaml(db, "  mirror:\n    max_queue_bytes: 1048576\n    overflow: block\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", db}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, db); }, 30s, "the mirror streams"));
  servers().target.stop();
  PgConnection c(proxy.conninfo("postgres", kPassword, db));
  const std::string big(100000, 'x');
  std::atomic<int> done{0};
  std::string error;
  std::thread writer([&] {
    try {
      for (int i = 1; i <= 20; ++i) {
        c.exec("INSERT INTO blobs VALUES (" + std::to_string(i) + ", '" + big + "')");
        done = i;
      }
    } catch (const std::exception& e) {
      error = std::string(e.what()).substr(0, 120);  // 53300 at query_wait_timeout: no wakeup
    }
  });
  // 11 fill the 1 MiB; the 12th waits before its transaction reaches the source.
  ASSERT_TRUE(
      wait_until([&] { return json_number(mirror_status(proxy, db), "queue_bytes") >= 1048576; },
                 30s, "the queue fills"));
  const auto queued = json_number(mirror_status(proxy, db), "queued");
  EXPECT_LT(queued, 20);
  EXPECT_LT(done.load(), 20);
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM blobs", db).scalar(),
            std::to_string(queued));
  servers().target.start();
  writer.join();  // the writer is woken once there is room again
  EXPECT_EQ(error, "");
  EXPECT_EQ(done.load(), 20);
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, db); }, 60s, "the queue drains"));
  auto m = mirror_status(proxy, db);
  EXPECT_EQ(json_number(m, "divergences"), 0) << boost::json::serialize(m);
  EXPECT_EQ(m.at("mirroring"), true);
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM blobs", db).scalar(), "20");
  expect_verify_equal(proxy, db);
}

}  // namespace
}  // namespace pgshift::test
