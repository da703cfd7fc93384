// Issue 14 item 3: one pool per (route, side, database, user), whatever the clients'
// application_name, client_encoding, TimeZone...: `pool.size` caps upstream backends, and
// each client still sees its own parameter values, reported as PostgreSQL reports them.
// Real cluster, real pgshift, real libpq, in session and transaction mode.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "tests/integration/helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

// pgshift logs in upstream as this role, so its backends are easy to count.
constexpr const char* kPooledRole = "pooled";

struct Servers {
  PgCluster source{{.name = "source"}};
  Servers() {
    source.create_role(kPooledRole, "pooled-pw", AuthMethod::scram_sha_256, "LOGIN SUPERUSER");
  }
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

PgshiftOptions proxy_options(const std::string& mode, int pool_size,
                             const std::string& extra = {}) {
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.extra_yaml = extra;
  spec.routes.push_back({.source = upstream_of(servers().source, kPooledRole),
                         .pool_mode = mode,
                         .pool_size = pool_size});
  return {.config_yaml = spec.to_yaml(), .users = users_file_text({{kPooledRole, "x"}})};
}

int pooled_backends() {
  return std::stoi(
      servers()
          .source
          .exec(std::string("SELECT count(*) FROM pg_stat_activity WHERE usename = '") +
                kPooledRole + "'")
          .scalar());
}

class PoolParamsTest : public ::testing::TestWithParam<std::string> {};

// 20 clients, each with its own application_name (and half with LATIN1), through a pool of 3.
TEST_P(PoolParamsTest, DistinctApplicationNamesShareOnePool) {
  PgshiftProcess proxy(proxy_options(GetParam(), 3));
  const std::string base = proxy.conninfo(kPooledRole, "x");
  std::atomic<bool> done{false};
  std::atomic<int> most{0};
  std::thread monitor([&] {
    while (!done) {
      const int n = pooled_backends();
      int seen = most.load();
      while (n > seen && !most.compare_exchange_weak(seen, n)) {
      }
      std::this_thread::sleep_for(20ms);  // a sampling period, not synchronisation
    }
  });
  std::vector<std::string> failures(20);
  std::vector<std::thread> clients;
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&, i] {
      const std::string name = "client_" + std::to_string(i);
      const std::string encoding = i % 2 ? "LATIN1" : "UTF8";
      try {
        PgConnection conn(base + " application_name=" + name + " client_encoding=" + encoding);
        for (int round = 0; round < 3; ++round) {
          const QueryResult r = conn.exec(
              "SELECT current_setting('application_name'), current_setting('client_encoding'), "
              "(SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()), "
              "pg_sleep(0.05)::text");
          const std::string got = r.at(0, 0) + "/" + r.at(0, 1) + "/" + r.at(0, 2);
          const std::string want = name + "/" + encoding + "/" + name;
          if (got != want) failures[i] += "round " + std::to_string(round) + ": " + got + "; ";
          if (std::string(PQparameterStatus(conn.native(), "application_name")) != name ||
              std::string(PQparameterStatus(conn.native(), "client_encoding")) != encoding) {
            failures[i] += "ParameterStatus differs; ";
          }
        }
      } catch (const std::exception& e) {
        failures[i] += e.what();
      }
    });
  }
  for (auto& t : clients) t.join();
  done = true;
  monitor.join();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(failures[i], "") << "client " << i;
  EXPECT_LE(most.load(), 3) << "pgshift's backends at once";
  EXPECT_LE(pooled_backends(), 3) << "idle servers left behind";
  EXPECT_GT(most.load(), 0);
}

// The parameters PostgreSQL 15 reports (GUC_REPORT).
const char* const kReported[] = {"application_name",
                                 "client_encoding",
                                 "DateStyle",
                                 "default_transaction_read_only",
                                 "in_hot_standby",
                                 "integer_datetimes",
                                 "IntervalStyle",
                                 "is_superuser",
                                 "server_encoding",
                                 "server_version",
                                 "session_authorization",
                                 "standard_conforming_strings",
                                 "TimeZone"};

std::string reported(PgConnection& conn) {
  std::string out;
  for (const char* name : kReported) {
    const char* v = PQparameterStatus(conn.native(), name);
    out += std::string(name) + "=" + (v ? v : "(none)") + "\n";
  }
  return out;
}

// libpq sends PGTZ, PGDATESTYLE and PGCLIENTENCODING as startup parameters (TimeZone,
// DateStyle, client_encoding): one server (pool size 1) is handed to clients with different
// values in turn, and each sees what a direct connection with the same values sees.
TEST_P(PoolParamsTest, ParameterStatusMatchesADirectConnection) {
  PgshiftProcess proxy(proxy_options(GetParam(), 1, "threads: 1\n"));
  struct Values {
    const char* app;
    const char* tz;
    const char* datestyle;
    const char* encoding;
  };
  const Values steps[] = {{"first", "UTC", "ISO, DMY", "UTF8"},
                          {"second", "Europe/Paris", "SQL, MDY", "LATIN1"},
                          {"third", "America/New_York", "Postgres, YMD", "SQL_ASCII"},
                          {"first", "UTC", "ISO, DMY", "UTF8"}};
  for (const Values& v : steps) {
    SCOPED_TRACE(std::string(v.app) + " " + v.tz);
    ::setenv("PGTZ", v.tz, 1);
    ::setenv("PGDATESTYLE", v.datestyle, 1);
    ::setenv("PGCLIENTENCODING", v.encoding, 1);
    const std::string extra = std::string(" application_name=") + v.app;
    PgConnection direct(servers().source.conninfo(kPooledRole, "pooled-pw") + extra);
    PgConnection through(proxy.conninfo(kPooledRole, "x") + extra);
    ::unsetenv("PGTZ");
    ::unsetenv("PGDATESTYLE");
    ::unsetenv("PGCLIENTENCODING");
    EXPECT_EQ(reported(through), reported(direct));
    const std::string show =
        "SELECT current_setting('TimeZone') || ' ' || "
        "current_setting('DateStyle') || ' ' || now()::date::text";
    EXPECT_EQ(through.scalar(show), direct.scalar(show));
    // RESET goes back to the client's own startup value when it matches the server's.
    through.exec("SET TimeZone = 'Asia/Tokyo'");
    direct.exec("SET TimeZone = 'Asia/Tokyo'");
    through.exec("RESET TimeZone");
    direct.exec("RESET TimeZone");
    if (std::string(v.app) != "second" && std::string(v.app) != "third") {
      EXPECT_EQ(through.scalar("SHOW TimeZone"), direct.scalar("SHOW TimeZone"));
    }
  }
  // A value the server refuses fails the login as it does directly, and the server stays.
  ::setenv("PGTZ", "UTC", 1);
  ::setenv("PGCLIENTENCODING", "UTF8", 1);
  ::setenv("PGDATESTYLE", "nonsense", 1);
  const std::string app = " application_name=refused";
  const std::string direct_error =
      connect_error(servers().source.conninfo(kPooledRole, "pooled-pw") + app);
  const std::string through_error = connect_error(proxy.conninfo(kPooledRole, "x") + app);
  const std::string refused = "invalid value for parameter \"DateStyle\": \"nonsense\"";
  EXPECT_NE(direct_error.find(refused), std::string::npos) << direct_error;
  EXPECT_NE(through_error.find(refused), std::string::npos) << through_error;
  EXPECT_NE(through_error.find("FATAL"), std::string::npos) << through_error;
  ::setenv("PGDATESTYLE", "German, YMD", 1);
  EXPECT_EQ(PgConnection(proxy.conninfo(kPooledRole, "x") + app).scalar("SHOW DateStyle"),
            "German, YMD");
  for (const char* name : {"PGTZ", "PGCLIENTENCODING", "PGDATESTYLE"}) ::unsetenv(name);
  EXPECT_EQ(pooled_backends(), 1);
}

// Transaction mode: two clients with different values take turns on one server; every
// transaction sees its own client's values.
TEST(PoolParamsTxnTest, ClientsTakingTurnsOnOneServerSeeTheirOwnValues) {
  PgshiftProcess proxy(proxy_options("transaction", 1, "threads: 1\n"));
  const std::string base = proxy.conninfo(kPooledRole, "x");
  PgConnection a(base + " application_name=alpha client_encoding=LATIN1");
  PgConnection b(base + " application_name=beta client_encoding=UTF8");
  const std::string q =
      "SELECT current_setting('application_name') || '/' || current_setting('client_encoding') "
      "|| '/' || pg_backend_pid()";
  std::string pid;
  for (int i = 0; i < 5; ++i) {
    const std::string ra = a.scalar(q), rb = b.scalar(q);
    EXPECT_EQ(ra.substr(0, ra.rfind('/')), "alpha/LATIN1");
    EXPECT_EQ(rb.substr(0, rb.rfind('/')), "beta/UTF8");
    EXPECT_EQ(ra.substr(ra.rfind('/')), rb.substr(rb.rfind('/'))) << "one server";
  }
  // A client's own change pins its server (set_config() is session state) and stays its
  // own; once it leaves, the server is reset and the next client gets its own values.
  EXPECT_EQ(a.scalar("SELECT set_config('application_name', 'changed', false)"), "changed");
  EXPECT_EQ(a.scalar("SHOW application_name"), "changed");
  { PgConnection gone = std::move(a); }
  const std::string rb = b.scalar(q);
  EXPECT_EQ(rb.substr(0, rb.rfind('/')), "beta/UTF8");
  EXPECT_EQ(pooled_backends(), 1);
}

INSTANTIATE_TEST_SUITE_P(PoolModes, PoolParamsTest, ::testing::Values("session", "transaction"));

}  // namespace
}  // namespace pgshift::test
