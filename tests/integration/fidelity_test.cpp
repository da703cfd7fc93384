// Fidelity (issue 14): what a client sees through pgshift is what PostgreSQL 15 itself would
// show. Real clusters, the real pgshift binary, real libpq.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <poll.h>

#include <memory>

#include "tests/integration/helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct Servers {
  PgCluster source{{.name = "source", .settings = {{"max_prepared_transactions", "10"}}}};
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

// pgshift in front of the source: trust client auth (raw sockets log in without SCRAM),
// fixed upstream credentials, session or transaction pooling.
PgshiftOptions proxy_options(const std::string& pool_mode, const std::string& extra_yaml = {},
                             int pool_size = 0) {
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.extra_yaml = extra_yaml;
  spec.routes.push_back(
      {.source = upstream_of(servers().source), .pool_mode = pool_mode, .pool_size = pool_size});
  return {.config_yaml = spec.to_yaml(), .users = users_file_text({{"app", "app-pw"}})};
}

// ---- 14.6: parameter counts are unsigned ----

// "SELECT array_length(ARRAY[$1::int, ..., $n::int], 1) + $1" with typed parameters, so the
// Parse message carries n type OIDs (libpq sends the types only when given).
struct ManyParams {
  std::string sql;
  std::vector<std::string> values;
  std::vector<Oid> types;
  std::vector<const char*> pointers;

  explicit ManyParams(int n) {
    sql = "SELECT array_length(ARRAY[";
    for (int i = 1; i <= n; ++i) {
      sql += (i > 1 ? ",$" : "$") + std::to_string(i);
      values.push_back(std::to_string(i % 1000));
    }
    sql += "]::int[], 1)";
    types.assign(static_cast<std::size_t>(n), 23);  // int4
    for (const auto& v : values) pointers.push_back(v.c_str());
  }
};

// PQexecParams with n typed parameters: the result, or the error text.
std::string exec_many_params(PgConnection& conn, int n) {
  ManyParams p(n);
  PGresult* res = PQexecParams(conn.native(), p.sql.c_str(), n, p.types.data(), p.pointers.data(),
                               nullptr, nullptr, 0);
  std::string out = PQresultStatus(res) == PGRES_TUPLES_OK
                        ? std::string(PQgetvalue(res, 0, 0))
                        : std::string("error: ") + PQresultErrorMessage(res);
  PQclear(res);
  return out;
}

class ParamCountTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ParamCountTest, StatementsWithMoreThan32767ParametersWork) {
  PgshiftProcess proxy(proxy_options(GetParam()));
  PgConnection conn(proxy.conninfo("app", "app-pw"));
  for (int n : {32767, 32768, 65535}) {
    EXPECT_EQ(exec_many_params(conn, n), std::to_string(n)) << n << " parameters";
  }
  // The session is still usable, and so is pgshift.
  EXPECT_EQ(conn.scalar("SELECT 'still here'"), "still here");
  PgConnection direct(servers().source.conninfo());
  EXPECT_EQ(exec_many_params(direct, 65536).substr(0, 6), "error:")
      << "PostgreSQL itself caps parameters at 65,535";
}

INSTANTIATE_TEST_SUITE_P(PoolModes, ParamCountTest, ::testing::Values("session", "transaction"));

// Describe of a statement with 32,768 parameters: the ParameterDescription is 131,078 bytes.
// libpq refuses backend messages of this type above 30,000 bytes, but other drivers (pgJDBC,
// pgx) read them, so pgshift must relay it. A raw socket plays the driver.
TEST(ParamCountRawTest, LargeParameterDescriptionIsRelayed) {
  for (const char* mode : {"session", "transaction"}) {
    SCOPED_TRACE(mode);
    PgshiftProcess proxy(proxy_options(mode));
    RawSocket socket = RawSocket::connect(proxy.host(), proxy.port());
    ASSERT_TRUE(socket.send(startup_packet({{"user", "app"}, {"database", "postgres"}})));
    std::string bytes;
    const auto deadline = SteadyClock::now() + 10s;
    auto has = [&](char type) {
      for (const auto& m : parse_backend_messages(bytes)) {
        if (m.type == type) return true;
      }
      return false;
    };
    while (!has('Z') && !socket.closed() && SteadyClock::now() < deadline) {
      bytes += socket.receive(1, 1s);
    }
    ASSERT_TRUE(has('Z')) << "no ReadyForQuery after login";

    const int n = 32768;
    ManyParams p(n);
    std::string parse = std::string("s1") + '\0' + p.sql + '\0';
    parse += static_cast<char>(n >> 8);
    parse += static_cast<char>(n & 0xff);
    for (int i = 0; i < n; ++i) parse += be32(23);
    ASSERT_TRUE(socket.send(frontend_message('P', parse) +
                            frontend_message('D', std::string("Ss1") + '\0') +
                            frontend_message('S', "")));
    bytes.clear();
    while (!has('Z') && !socket.closed() && SteadyClock::now() < deadline + 10s) {
      bytes += socket.receive(1, 1s);
    }
    ASSERT_TRUE(has('Z')) << "no ReadyForQuery after Parse/Describe/Sync (closed: "
                          << socket.closed() << ")\n"
                          << proxy.log();
    std::optional<BackendMessage> description;
    for (const auto& m : parse_backend_messages(bytes)) {
      if (m.type == 't') description = m;
      EXPECT_NE(m.type, 'E') << error_fields(m.body)['M'];
    }
    ASSERT_TRUE(description.has_value());
    ASSERT_EQ(description->body.size(), 2u + 4u * n);
    EXPECT_EQ(static_cast<unsigned char>(description->body[0]) * 256 +
                  static_cast<unsigned char>(description->body[1]),
              n);
  }
}

// ---- 14.2: idle pooled servers do not block database commands ----

std::string backends_on(const std::string& database) {
  return servers()
      .source.exec("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + database + "'")
      .scalar();
}

class DatabaseCommandTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DatabaseCommandTest, IdlePooledServersDoNotBlockThem) {
  const std::string p = "ddl_" + GetParam() + "_";
  for (const char* db : {"drop", "rename", "src"}) {
    servers().source.exec("DROP DATABASE IF EXISTS " + p + db);
    servers().source.exec("CREATE DATABASE " + p + db);
  }
  for (const char* db : {"renamed", "copy", "new"}) {
    servers().source.exec("DROP DATABASE IF EXISTS " + p + db);
  }
  PgshiftProcess proxy(proxy_options(GetParam()));
  // A session on each database leaves an idle pooled server behind, except on template1.
  for (const std::string& db : {p + "drop", p + "rename", p + "src", std::string("template1")}) {
    EXPECT_EQ(run_psql(proxy.conninfo("app", "x", db), "SELECT 1"), "1") << db;
  }
  EXPECT_TRUE(wait_until([&] { return backends_on(p + "drop") == "1"; }, 10s,
                         "an idle pooled server on the database"));
  EXPECT_TRUE(wait_until([&] { return backends_on("template1") == "0"; }, 10s,
                         "no idle pooled server on template1"));

  const std::string c = proxy.conninfo("app", "x", "postgres");
  auto run = [&](const std::string& sql) {
    const CommandResult r = try_psql(c, sql, 30s);
    EXPECT_TRUE(r.success()) << sql << "\n" << r.describe();
  };
  run("DROP DATABASE " + p + "drop");
  run("/* tools comment */ ALTER DATABASE " + p + "rename RENAME TO " + p + "renamed");
  run("CREATE DATABASE " + p + "copy TEMPLATE " + p + "src");
  run("CREATE DATABASE " + p + "new");  // copies template1
  EXPECT_EQ(servers()
                .source
                .exec("SELECT count(*) FROM pg_database WHERE datname IN ('" + p + "renamed', '" +
                      p + "copy', '" + p + "new')")
                .scalar(),
            "3");
  for (const char* db : {"renamed", "copy", "new", "src"}) {
    servers().source.exec("DROP DATABASE IF EXISTS " + p + db + " WITH (FORCE)");
  }
}

INSTANTIATE_TEST_SUITE_P(PoolModes, DatabaseCommandTest,
                         ::testing::Values("session", "transaction"));

// ---- 14.4: a reused server is as good as a fresh backend ----

// PREPARE TRANSACTION after using a temporary table: a fresh backend refuses it. Returns
// the error message, or "" if the server prepared it (then it is rolled back).
std::string prepare_after_temp_table(PgConnection& conn, const std::string& gid) {
  conn.exec("BEGIN");
  conn.exec("CREATE TEMP TABLE fresh_t (i int)");
  try {
    conn.exec("PREPARE TRANSACTION '" + gid + "'");
  } catch (const PgError& e) {
    const std::string what = e.what();
    return what.substr(0, what.find('\n'));  // without the statement, which names the gid
  }
  servers().source.exec("ROLLBACK PREPARED '" + gid + "'");
  return "";
}

TEST(FreshBackendTest, ServersWithStateDiscardAllKeepsAreClosed) {
  // One thread and one server, so that every session gets the same server when it is kept.
  PgshiftOptions options = proxy_options("session", "threads: 1\n", 1);
  PgshiftProcess proxy(std::move(options));
  const std::string c = proxy.conninfo("app", "x");
  PgConnection direct(servers().source.conninfo());
  const std::string fresh = prepare_after_temp_table(direct, "direct");
  ASSERT_THAT(fresh, HasSubstr("cannot PREPARE a transaction that has operated on temporary"));

  std::string pid = PgConnection(c).scalar("SELECT pg_backend_pid()");
  EXPECT_EQ(PgConnection(c).scalar("SELECT pg_backend_pid()"), pid) << "a plain session's "
                                                                       "server is reused";
  {
    PgConnection temp(c);
    temp.exec("CREATE TEMP TABLE leftover (i int)");
  }
  PgConnection next(c);
  EXPECT_NE(next.scalar("SELECT pg_backend_pid()"), pid) << "a temp-namespace server was reused";
  EXPECT_EQ(prepare_after_temp_table(next, "through"), fresh);

  next = PgConnection(servers().source.conninfo());  // ends that session

  // Two-phase commit, on a server without a temporary namespace: closed too.
  servers().source.exec("CREATE TABLE IF NOT EXISTS fresh_2pc (i int)");
  {
    PgConnection two_phase(c);
    pid = two_phase.scalar("SELECT pg_backend_pid()");
    EXPECT_EQ(two_phase.scalar("SELECT pg_my_temp_schema()::int"), "0");
    two_phase.exec("BEGIN; INSERT INTO fresh_2pc VALUES (1); PREPARE TRANSACTION 'p2pc'");
    two_phase.exec("COMMIT PREPARED 'p2pc'");
  }
  EXPECT_NE(PgConnection(c).scalar("SELECT pg_backend_pid()"), pid);
}

// ---- 14.1: session mode gives the client its server's real backend pid ----

// The sender pid libpq reports for the next notification on `conn`, or 0.
int notification_pid(PgConnection& conn, std::chrono::milliseconds timeout) {
  const auto deadline = SteadyClock::now() + timeout;
  while (SteadyClock::now() < deadline) {
    if (PQconsumeInput(conn.native()) == 0) return 0;
    if (PGnotify* n = PQnotifies(conn.native())) {
      const int pid = n->be_pid;
      PQfreemem(n);
      return pid;
    }
    pollfd p{PQsocket(conn.native()), POLLIN, 0};
    ::poll(&p, 1, 100);
  }
  return 0;
}

TEST(BackendPidTest, SessionModeReportsTheServersRealPid) {
  // One server, so that the second session gets the first one's server (and its pid) while
  // the first may not have unregistered its cancel key yet.
  PgshiftProcess proxy(proxy_options("session", "threads: 1\n", 1));
  const std::string c = proxy.conninfo("app", "x");
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    PgConnection conn(c);
    const std::string pid = conn.scalar("SELECT pg_backend_pid()");
    EXPECT_EQ(std::to_string(conn.backend_pid()), pid) << "BackendKeyData vs pg_backend_pid()";
    // A client recognises its own notifications by the sender pid.
    conn.exec("LISTEN fidelity_pid; NOTIFY fidelity_pid, 'mine'");
    EXPECT_EQ(notification_pid(conn, 5s), conn.backend_pid());
    // Cancel still goes through pgshift's own secret key.
    const CancelOutcome cancel = cancel_pg_sleep(conn, servers().source, "fidelity-pid");
    ASSERT_TRUE(cancel.started);
    EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
    EXPECT_EQ(conn.scalar("SELECT 'usable'"), "usable");
  }
  // psycopg2 reports the same pid as the server.
  const CommandResult py = run_command({"/usr/bin/python3", "-c",
                                        "import psycopg2, sys\n"
                                        "c = psycopg2.connect(sys.argv[1])\n"
                                        "cur = c.cursor(); cur.execute('select pg_backend_pid()')\n"
                                        "print(c.get_backend_pid() == cur.fetchone()[0])\n",
                                        c},
                                       30s);
  EXPECT_EQ(py.out, "True\n") << py.describe();
  // pg_terminate_backend(<the pid the driver reports>) ends that very session.
  PgConnection victim(c);
  PgConnection killer(servers().source.conninfo());
  EXPECT_EQ(
      killer.scalar("SELECT pg_terminate_backend(" + std::to_string(victim.backend_pid()) + ")"),
      "t");
  EXPECT_THROW(victim.exec("SELECT 1"), PgError);
}

TEST(BackendPidTest, TransactionModeCancelStillWorks) {
  PgshiftProcess proxy(proxy_options("transaction"));
  PgConnection conn(proxy.conninfo("app", "x"));
  EXPECT_GT(conn.backend_pid(), 0);
  const CancelOutcome cancel = cancel_pg_sleep(conn, servers().source, "fidelity-txn-pid");
  ASSERT_TRUE(cancel.started);
  EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
}

}  // namespace
}  // namespace pgshift::test
