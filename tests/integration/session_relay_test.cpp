// Session-mode relay through the real pgshift binary against a real PostgreSQL 15: psql,
// pgbench in all three query modes, large COPY in and out, a large bytea, cancel,
// LISTEN/NOTIFY, a logical replication connection and psycopg2.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <cstdint>
#include <regex>

#include "tests/integration/helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr const char* kUser = "app";
constexpr const char* kPassword = "app-pw";

struct Servers {
  PgCluster source{
      {.name = "source", .settings = {{"wal_level", "logical"}, {"max_connections", "100"}}}};
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

// A fresh pgshift per test: route "*" to the source cluster as its superuser; clients log in
// as app/app-pw (SCRAM against the users file).
class SessionRelayTest : public ::testing::Test {
 protected:
  SessionRelayTest() : proxy_(options()) {}

  static PgshiftOptions options() {
    ConfigSpec spec;
    spec.routes.push_back({.source = upstream_of(servers().source)});
    return {.config_yaml = spec.to_yaml(), .users = users_file_text({{kUser, kPassword}})};
  }

  std::string conninfo(const std::string& db = "postgres", const std::string& extra = {}) const {
    return proxy_.conninfo(kUser, kPassword, db, extra);
  }

  PgCluster& source() { return servers().source; }

  PgshiftProcess proxy_;
  TempDir dir_{"session-relay"};
};

TEST_F(SessionRelayTest, PsqlBasics) {
  const std::string c = conninfo();
  run_psql(c, "DROP TABLE IF EXISTS basics; CREATE TABLE basics (id int PRIMARY KEY, name text)");
  run_psql(c, "INSERT INTO basics VALUES (1, 'one'), (2, 'two'), (3, 'three')");
  EXPECT_EQ(run_psql(c, "SELECT id, name FROM basics ORDER BY id"), "1|one\n2|two\n3|three");

  // \copy in and out (COPY FROM STDIN / TO STDOUT on the wire).
  const auto in_file = dir_ / "in.csv";
  write_file(in_file, "4,four\n5,\"fi,ve\"\n6,\n");
  run_psql(c, "\\copy basics FROM '" + in_file.string() + "' WITH (FORMAT csv)");
  const auto out_file = dir_ / "out.csv";
  run_psql(c, "\\copy (SELECT * FROM basics WHERE id >= 4 ORDER BY id) TO '" + out_file.string() +
                  "' WITH (FORMAT csv)");
  EXPECT_EQ(read_file(out_file), read_file(in_file));
  EXPECT_EQ(source().exec("SELECT count(*) FROM basics").scalar(), "6");

  // Errors come back with their SQLSTATE; the session stays usable.
  const CommandResult missing =
      try_psql(c, "SELECT * FROM no_such_table", 60s, {"-v", "VERBOSITY=verbose"});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.err, HasSubstr("ERROR:  42P01: relation \"no_such_table\" does not exist"));

  PgConnection conn(c);
  try {
    conn.exec("INSERT INTO basics VALUES (1, 'dup')");
    ADD_FAILURE() << "expected a unique violation";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "23505") << e.what();
  }
  try {
    conn.exec("SELECT 1/0");
    ADD_FAILURE() << "expected division by zero";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "22012") << e.what();
  }
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM basics"), "6");

  // Notices reach the client, from libpq and from psql.
  conn.exec("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$");
  ASSERT_EQ(conn.notices().size(), 1u);
  EXPECT_THAT(conn.notices()[0], HasSubstr("NOTICE:  hello from plpgsql"));
  const CommandResult notice = try_psql(c, "DO $$ BEGIN RAISE WARNING 'careful'; END $$");
  EXPECT_TRUE(notice.success()) << notice.describe();
  EXPECT_THAT(notice.err, HasSubstr("WARNING:  careful"));

  // ParameterStatus is relayed: psql sees a SET of a GUC_REPORT setting.
  EXPECT_EQ(run_psql(c, "SET application_name = 'relay-test'; SHOW application_name"),
            "relay-test");
}

// Runs pgbench through the proxy and returns its stdout; fails the test on a non-zero exit.
std::string run_pgbench(const std::string& conninfo, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {pg_tool("pgbench").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(conninfo);
  ProcessOptions options;
  options.argv = argv;
  options.unset_env = libpq_environment_variables();
  const CommandResult result = run_command(std::move(options), timeout);
  EXPECT_TRUE(result.success()) << result.describe();
  return result.out;
}

TEST_F(SessionRelayTest, PgbenchAllQueryModesWithSixteenClients) {
  const std::string c = conninfo();
  run_pgbench(c, {"-i", "-s", "1", "-q"}, 120s);  // initialised through the proxy (COPY)
  EXPECT_EQ(source().exec("SELECT count(*) FROM pgbench_accounts").scalar(), "100000");

  const std::regex processed(R"(number of transactions actually processed: (\d+))");
  const std::regex failed(R"(number of failed transactions: (\d+))");
  for (const std::string mode : {"simple", "extended", "prepared"}) {
    SCOPED_TRACE("pgbench -M " + mode);
    const std::string out =
        run_pgbench(c, {"-M", mode, "-c", "16", "-j", "2", "-T", "4", "-n"}, 60s);
    EXPECT_THAT(out, HasSubstr("query mode: " + mode));
    EXPECT_THAT(out, HasSubstr("number of clients: 16"));
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, processed)) << out;
    EXPECT_GT(std::stoll(m[1]), 0) << out;
    ASSERT_TRUE(std::regex_search(out, m, failed)) << out;
    EXPECT_EQ(m[1], "0") << out;
  }
}

TEST_F(SessionRelayTest, CopyOverOneHundredMegabytesInAndOut) {
  // ~117 MB of COPY text: 1.1 M rows of id + 100 characters.
  source().exec(
      "DROP TABLE IF EXISTS copy_src, copy_dst;"
      "CREATE TABLE copy_src (id int PRIMARY KEY, payload text);"
      "CREATE TABLE copy_dst (id int PRIMARY KEY, payload text);"
      "INSERT INTO copy_src SELECT g, md5(g::text) || md5((g * 7)::text) || "
      "  md5((g * 13)::text) || 'tab\there' FROM generate_series(1, 1100000) AS g");
  const std::string c = conninfo();
  const auto out_file = dir_ / "copy_src.txt";
  run_psql(c, "\\copy copy_src TO '" + out_file.string() + "'", 120s);
  const auto size = std::filesystem::file_size(out_file);
  EXPECT_GE(size, 100u * 1024 * 1024);

  run_psql(c, "\\copy copy_dst FROM '" + out_file.string() + "'", 120s);
  const std::string checksum = "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY id)) FROM ";
  const QueryResult src = source().exec(checksum + "copy_src AS t");
  const QueryResult dst = source().exec(checksum + "copy_dst AS t");
  EXPECT_EQ(src.at(0, 0), "1100000");
  EXPECT_EQ(dst.at(0, 0), src.at(0, 0));
  EXPECT_EQ(dst.at(0, 1), src.at(0, 1));

  // And out again: byte-identical to the first export.
  const auto again_file = dir_ / "copy_dst.txt";
  run_psql(c, "\\copy copy_dst TO '" + again_file.string() + "'", 120s);
  EXPECT_EQ(std::filesystem::file_size(again_file), size);
  EXPECT_TRUE(read_file(again_file) == read_file(out_file)) << "exports differ";
  source().exec("DROP TABLE copy_src, copy_dst");
}

TEST_F(SessionRelayTest, SixtyFourMegabyteByteaRoundTrip) {
  constexpr std::size_t kSize = 64u * 1024 * 1024 + 17;
  std::string data(kSize, '\0');
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  for (auto& byte : data) {  // xorshift64: every byte value, no compressible runs
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    byte = static_cast<char>(x >> 56);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex = "\\x";
  hex.reserve(2 + 2 * kSize);
  for (unsigned char b : data) {
    hex += kHex[b >> 4];
    hex += kHex[b & 15];
  }

  PgConnection conn(conninfo());
  conn.exec("DROP TABLE IF EXISTS blobs; CREATE TABLE blobs (id int PRIMARY KEY, data bytea)");
  // Text parameter (a ~128 MB Bind message) through the extended protocol.
  conn.exec_params("INSERT INTO blobs VALUES (1, $1::bytea)", {hex});
  hex.clear();
  hex.shrink_to_fit();
  EXPECT_EQ(source().exec("SELECT length(data) FROM blobs WHERE id = 1").scalar(),
            std::to_string(kSize));

  // Read back in binary (a 64 MB DataRow).
  PGresult* result = PQexecParams(conn.native(), "SELECT data FROM blobs WHERE id = 1", 0, nullptr,
                                  nullptr, nullptr, nullptr, 1);
  ASSERT_EQ(PQresultStatus(result), PGRES_TUPLES_OK) << PQresultErrorMessage(result);
  ASSERT_EQ(PQntuples(result), 1);
  const std::string back(PQgetvalue(result, 0, 0),
                         static_cast<std::size_t>(PQgetlength(result, 0, 0)));
  PQclear(result);
  EXPECT_EQ(back.size(), kSize);
  EXPECT_TRUE(back == data) << "bytea differs after the round trip";

  // The session is still in sync afterwards.
  EXPECT_EQ(conn.scalar("SELECT 41 + 1"), "42");
  conn.exec("DROP TABLE blobs");
}

TEST_F(SessionRelayTest, CancelOfPgSleepReturnsWithinOneSecond) {
  PgConnection conn(conninfo());
  const CancelOutcome cancel = cancel_pg_sleep(conn, source(), "pgshift-cancel-test");
  ASSERT_TRUE(cancel.started);
  EXPECT_LT(cancel.elapsed, 1s) << cancel.elapsed.count() << " ms";
  EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
  EXPECT_THAT(cancel.error, HasSubstr("canceling statement due to user request"));
  EXPECT_EQ(conn.scalar("SELECT 'still usable'"), "still usable");

  // Cancelling an idle session is harmless, to it and to others.
  PGcancel* idle_cancel = PQgetCancel(conn.native());
  PgConnection other(conninfo());
  char buffer[256];
  EXPECT_EQ(PQcancel(idle_cancel, buffer, sizeof buffer), 1) << buffer;
  PQfreeCancel(idle_cancel);
  EXPECT_EQ(conn.scalar("SELECT 'idle survived'"), "idle survived");
  EXPECT_EQ(other.scalar("SELECT 'other untouched'"), "other untouched");
}

TEST_F(SessionRelayTest, ListenNotifyAcrossTwoClients) {
  PgConnection listener(conninfo());
  PgConnection notifier(conninfo());
  listener.exec("LISTEN pgshift_events");
  notifier.exec("NOTIFY pgshift_events, 'first'");
  auto n = wait_for_notification(listener.native(), 10s);
  ASSERT_TRUE(n.has_value()) << "no notification arrived";
  EXPECT_EQ(n->channel, "pgshift_events");
  EXPECT_EQ(n->payload, "first");

  // Delivered at commit, not before.
  notifier.exec("BEGIN; SELECT pg_notify('pgshift_events', 'second')");
  EXPECT_FALSE(wait_for_notification(listener.native(), 200ms).has_value());
  notifier.exec("COMMIT");
  n = wait_for_notification(listener.native(), 10s);
  ASSERT_TRUE(n.has_value()) << "no notification after COMMIT";
  EXPECT_EQ(n->payload, "second");

  listener.exec("UNLISTEN *");
  notifier.exec("NOTIFY pgshift_events, 'third'");
  EXPECT_EQ(listener.scalar("SELECT 1"), "1");
  EXPECT_FALSE(wait_for_notification(listener.native(), 200ms).has_value());
}

TEST_F(SessionRelayTest, LogicalReplicationConnectionIsRelayed) {
  const std::string c = conninfo("postgres", "replication=database");
  const std::string identify = run_psql(c, "IDENTIFY_SYSTEM");
  const std::string system_id =
      source().exec("SELECT system_identifier FROM pg_control_system()").scalar();
  EXPECT_THAT(identify, ::testing::StartsWith(system_id + "|1|")) << identify;
  EXPECT_THAT(identify, ::testing::EndsWith("|postgres"));

  // A real logical decoding stream (CopyBoth) through the proxy with pg_recvlogical.
  source().exec("DROP TABLE IF EXISTS repl_t; CREATE TABLE repl_t (id int PRIMARY KEY, v text)");
  auto recvlogical = [&](std::vector<std::string> args) {
    ProcessOptions options;
    options.argv = {pg_tool("pg_recvlogical").string(), "-d", conninfo(), "--slot",
                    "pgshift_test_slot"};
    options.argv.insert(options.argv.end(), args.begin(), args.end());
    options.unset_env = libpq_environment_variables();
    return run_command(std::move(options), 60s);
  };
  CommandResult created = recvlogical({"--create-slot", "-P", "test_decoding"});
  ASSERT_TRUE(created.success()) << created.describe();
  source().exec("INSERT INTO repl_t VALUES (1, 'via-slot'), (2, 'second')");
  const std::string end_lsn = source().exec("SELECT pg_current_wal_insert_lsn()").scalar();
  const auto out_file = dir_ / "decoded.txt";
  const CommandResult streamed =
      recvlogical({"--start", "--no-loop", "--endpos", end_lsn, "-f", out_file.string()});
  EXPECT_TRUE(streamed.success()) << streamed.describe();
  const std::string decoded = read_file(out_file);
  EXPECT_THAT(decoded, HasSubstr("table public.repl_t: INSERT: id[integer]:1 v[text]:'via-slot'"));
  EXPECT_THAT(decoded, HasSubstr("table public.repl_t: INSERT: id[integer]:2 v[text]:'second'"));
  const CommandResult dropped = recvlogical({"--drop-slot"});
  EXPECT_TRUE(dropped.success()) << dropped.describe();
  EXPECT_EQ(source().exec("SELECT count(*) FROM pg_replication_slots").scalar(), "0");
}

TEST_F(SessionRelayTest, Psycopg2Smoke) {
  const auto script = source_dir() / "tests" / "integration" / "python" / "psycopg2_smoke.py";
  const CommandResult result =
      run_command({system_python().string(), script.string(), conninfo()}, 60s);
  EXPECT_TRUE(result.success()) << result.describe();
  EXPECT_THAT(result.out, HasSubstr("psycopg2 smoke: ok"));
}

}  // namespace
}  // namespace pgshift::test
