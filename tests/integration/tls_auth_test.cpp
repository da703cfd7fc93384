// TLS on both sides of pgshift, client authentication, routes and credentials, against real
// PostgreSQL 15 clusters: one plain ("source") and one TLS-only with a private CA ("secure",
// like RDS with rds.force_ssl).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "tests/integration/helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;

struct Servers {
  CertAuthority ca;
  PgCluster source{{.name = "source"}};
  PgCluster secure{{.name = "secure", .tls = ca.server(), .tls_only = true}};
  Servers() {
    source.create_role("alice", "alice-pw");
    source.create_role("bob", "bob-pw");
    source.create_role("mallory", "server-side-pw");
    source.create_database("db_one");
    source.create_database("db_two");
    source.exec("CREATE TABLE marker AS SELECT 'one' AS name", "db_one");
    source.exec("CREATE TABLE marker AS SELECT 'two' AS name", "db_two");
  }
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

const auto kUsers = std::vector<std::pair<std::string, std::string>>{{"app", "app-pw"}};

std::string verify_full(const std::filesystem::path& ca) {
  return "sslmode=verify-full sslrootcert=" + conninfo_quote(ca.string());
}

// A route to the TLS-only cluster with the given upstream TLS settings.
RouteSpec secure_route(const std::string& name, const std::string& mode,
                       const std::filesystem::path& ca, const std::string& host,
                       const std::string& server_name = {}) {
  UpstreamSpec up = upstream_of(servers().secure, {}, "postgres");
  up.host = host;
  up.tls_mode = mode;
  up.ca_file = ca.string();
  up.server_name = server_name;
  return {.name = name, .client_database = name, .source = up};
}

TEST(UpstreamTlsTest, VerifyFullSucceedsAndFailsClearlyForWrongCaOrHostname) {
  const CertAuthority& ca = servers().ca;
  ConfigSpec spec;
  spec.routes.push_back(secure_route("good", "verify-full", ca.ca_cert(), "localhost"));
  spec.routes.push_back(secure_route("wrong_ca", "verify-full", ca.wrong_ca_cert(), "localhost"));
  spec.routes.push_back(
      secure_route("wrong_host", "verify-full", ca.ca_cert(), "127.0.0.1", "db.wrong.example"));
  // verify-ca checks the chain only, so the wrong name is fine there.
  spec.routes.push_back(
      secure_route("ca_only", "verify-ca", ca.ca_cert(), "127.0.0.1", "db.wrong.example"));
  spec.routes.push_back(secure_route("plaintext", "disable", {}, "127.0.0.1"));
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(), .users = users_file_text(kUsers)});

  const std::string ssl_in_use = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "good"), ssl_in_use), "t");

  const std::string wrong_ca = connect_error_verbose(proxy.conninfo("app", "app-pw", "wrong_ca"));
  EXPECT_THAT(wrong_ca, AllOf(HasSubstr("08006"), HasSubstr("could not connect to the upstream"),
                              HasSubstr("certificate verify failed")));
  EXPECT_THAT(wrong_ca, HasSubstr("unable to get local issuer certificate"));

  const std::string wrong_host =
      connect_error_verbose(proxy.conninfo("app", "app-pw", "wrong_host"));
  EXPECT_THAT(wrong_host, AllOf(HasSubstr("08006"), HasSubstr("certificate verify failed"),
                                HasSubstr("hostname mismatch")));

  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "ca_only"), ssl_in_use), "t");

  // Cancel reaches the upstream over its TLS settings.
  {
    PgConnection conn(proxy.conninfo("app", "app-pw", "good"));
    const CancelOutcome cancel = cancel_pg_sleep(conn, servers().secure, "cancel-over-tls");
    ASSERT_TRUE(cancel.started);
    EXPECT_LT(cancel.elapsed, 1s) << cancel.elapsed.count() << " ms";
    EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
  }

  // The server's own refusal of a plaintext connection is relayed with its SQLSTATE.
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("app", "app-pw", "plaintext")),
              AllOf(HasSubstr("28000"), HasSubstr("no encryption")));

  // Failed upstream connections do not hurt the proxy.
  EXPECT_TRUE(proxy.running());
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "good"), ssl_in_use), "t");
  EXPECT_TRUE(proxy.terminate().success());
}

TEST(ClientTlsTest, RequireAcceptsVerifiedTlsAndRefusesPlaintext) {
  const CertAuthority& ca = servers().ca;
  ConfigSpec spec;
  spec.client_tls_mode = "require";
  spec.client_cert_file = ca.server_cert().string();
  spec.client_key_file = ca.server_key().string();
  spec.routes.push_back({.source = upstream_of(servers().source)});
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(), .users = users_file_text(kUsers)});

  const std::string base =
      "host=localhost hostaddr=127.0.0.1 port=" + std::to_string(proxy.port()) +
      " user=app password=app-pw dbname=postgres ";
  EXPECT_EQ(run_psql(base + verify_full(ca.ca_cert()), "SELECT 'over tls'"), "over tls");
  {
    PgConnection conn(base + verify_full(ca.ca_cert()));
    EXPECT_EQ(PQsslInUse(conn.native()), 1);
    EXPECT_THAT(PQsslAttribute(conn.native(), "protocol"),
                ::testing::AnyOf(::testing::StrEq("TLSv1.2"), ::testing::StrEq("TLSv1.3")));
  }

  {
    // libpq sends its CancelRequest in plaintext even for a TLS session: still accepted.
    PgConnection conn(base + verify_full(ca.ca_cert()));
    const CancelOutcome cancel = cancel_pg_sleep(conn, servers().source, "cancel-client-tls");
    ASSERT_TRUE(cancel.started);
    EXPECT_LT(cancel.elapsed, 1s) << cancel.elapsed.count() << " ms";
    EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
  }

  EXPECT_THAT(connect_error_verbose(base + "sslmode=disable"),
              AllOf(HasSubstr("28000"), HasSubstr("pgshift requires TLS for client connections")));
  EXPECT_THAT(connect_error(base + verify_full(ca.wrong_ca_cert())),
              HasSubstr("certificate verify failed"));
  // A wrong password over TLS is still a clean 28P01.
  EXPECT_THAT(connect_error_verbose(
                  "host=localhost hostaddr=127.0.0.1 port=" + std::to_string(proxy.port()) +
                  " user=app password=nope dbname=postgres " + verify_full(ca.ca_cert())),
              AllOf(HasSubstr("28P01"), HasSubstr("password authentication failed")));
  EXPECT_EQ(run_psql(base + "sslmode=require", "SELECT 1"), "1");
  EXPECT_TRUE(proxy.terminate().success());
}

TEST(ClientAuthTest, WrongPasswordUnknownUserAndUnknownDatabase) {
  ConfigSpec spec;
  RouteSpec only_postgres{
      .name = "pg", .client_database = "postgres", .source = upstream_of(servers().source)};
  spec.routes.push_back(only_postgres);
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(), .users = users_file_text(kUsers)});

  const std::string wrong = connect_error_verbose(proxy.conninfo("app", "wrong-pw"));
  EXPECT_THAT(wrong, AllOf(HasSubstr("28P01"),
                           HasSubstr("password authentication failed for user \"app\"")));
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("nobody", "app-pw")),
              AllOf(HasSubstr("28P01"), HasSubstr("password authentication failed")));
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("app", "app-pw", "no_such_db")),
              AllOf(HasSubstr("3D000"), HasSubstr("database \"no_such_db\" does not exist")));
  EXPECT_THAT(proxy.log(), ::testing::Not(HasSubstr("wrong-pw")));  // never log a password
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw"), "SELECT current_user"), "postgres");
}

TEST(ClientAuthTest, Md5ClientAuthentication) {
  ConfigSpec spec;
  spec.client_auth_method = "md5";
  spec.routes.push_back({.source = upstream_of(servers().source)});
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(), .users = users_file_text(kUsers)});
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw"), "SELECT 'md5 ok'"), "md5 ok");
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("app", "wrong")),
              AllOf(HasSubstr("28P01"), HasSubstr("password authentication failed")));
}

TEST(CredentialsTest, PassthroughWithPlaintextAndScramSecret) {
  PgCluster& source = servers().source;
  // bob's entry is the server's own SCRAM secret (as PgBouncer's auth_query would give).
  const std::string bob_secret =
      source.exec("SELECT rolpassword FROM pg_authid WHERE rolname = 'bob'").scalar();
  ASSERT_THAT(bob_secret, ::testing::StartsWith("SCRAM-SHA-256$"));
  ConfigSpec spec;
  UpstreamSpec up = upstream_of(source);
  up.user.clear();
  up.password.clear();
  up.passthrough = true;
  spec.routes.push_back({.source = up});
  PgshiftProcess proxy(
      {.config_yaml = spec.to_yaml(),
       .users = users_file_text(
           {{"alice", "alice-pw"}, {"bob", bob_secret}, {"mallory", "stale-password"}})});

  EXPECT_EQ(run_psql(proxy.conninfo("alice", "alice-pw"), "SELECT current_user"), "alice");
  EXPECT_EQ(run_psql(proxy.conninfo("bob", "bob-pw"), "SELECT session_user"), "bob");
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("bob", "alice-pw")),
              AllOf(HasSubstr("28P01"), HasSubstr("password authentication failed")));
  // The users file agrees with the client but not with the server: the server's refusal.
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("mallory", "stale-password")),
              AllOf(HasSubstr("28P01"), HasSubstr("password authentication failed for user "
                                                  "\"mallory\"")));
  EXPECT_EQ(run_psql(proxy.conninfo("alice", "alice-pw"), "SELECT 'still serving'"),
            "still serving");
}

TEST(RoutingTest, WildcardDatabaseReachesEveryDatabaseAndNamedRouteWins) {
  PgCluster& source = servers().source;
  ConfigSpec spec;
  spec.routes.push_back({.name = "any", .client_database = "*", .source = upstream_of(source)});
  spec.routes.push_back({.name = "alias",
                         .client_database = "alias_db",
                         .source = upstream_of(source, {}, "db_two")});
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(), .users = users_file_text(kUsers)});

  const std::string query = "SELECT current_database() || ':' || name FROM marker";
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "db_one"), query), "db_one:one");
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "db_two"), query), "db_two:two");
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "alias_db"), query), "db_two:two");
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw", "postgres"), "SELECT current_database()"),
            "postgres");
  // Through "*" an unknown database is the server's own 3D000.
  EXPECT_THAT(connect_error_verbose(proxy.conninfo("app", "app-pw", "missing_db")),
              AllOf(HasSubstr("3D000"), HasSubstr("database \"missing_db\" does not exist")));
}

}  // namespace
}  // namespace pgshift::test
