#include <gtest/gtest.h>

#include "config/load.hpp"
#include "test_util.hpp"

namespace pgshift::config {
namespace {

using test::ScopedEnv;
using test::TempDir;

// The three-services case of DESIGN.md section 1: three Postgres containers moving into
// one RDS instance holding three databases.
constexpr const char* kThreeServices = R"(listen:
  host: 0.0.0.0
  port: 6432
  tls: { mode: allow, cert_file: tls/server.crt, key_file: tls/server.key }
admin:
  port: 9187
  token_file: secrets/admin-token
client_auth:
  method: scram-sha-256
  users_file: users.txt
routes:
  - name: auth
    client_database: user_management_db
    source:
      host: user-management-db
      port: 5433
      database: user_management_db
      user: postgres
      password: "${file:secrets/source-password}"
      tls: { mode: disable }
    target:
      host: app.xxxx.us-east-1.rds.amazonaws.com
      database: auth_db
      user: app
      password: "${env:PGSHIFT_TEST_RDS_PASSWORD}"
      connect_timeout_ms: 3000
      tls: { mode: verify-full, ca_file: rds-global-bundle.pem }
    pool: { mode: transaction, size: 30, min_idle: 5, query_wait_timeout_ms: 5000 }
    routing_key: { comment_key: uid }
    read_split:
      read_your_writes_window_ms: 500
      allowed_functions: [app.current_tenant, lower]
      initial_read_percent: 12.5
    sync: { mode: logical }
  - name: exercises
    client_database: exercises_db
    source: { host: exercises-db, port: 5434, user: postgres, password: "${file:secrets/source-password}" }
    target:
      host: app.xxxx.us-east-1.rds.amazonaws.com
      user: app
      password: "${env:PGSHIFT_TEST_RDS_PASSWORD}"
      tls: { mode: verify-full, ca_file: rds-global-bundle.pem }
    sync: { mode: mirror }
  - name: scores
    client_database: scores_db
    client_user: scores_service
    source: { host: scores-db, port: 5435, credentials: passthrough }
    target:
      host: app.xxxx.us-east-1.rds.amazonaws.com
      database: scores_db
      credentials: passthrough
      tls: { mode: require }
limits: { max_message_length: 16777216 }
threads: 2
shutdown_timeout_ms: 10000
state_file: state/pgshift-state.json
log_level: debug
)";

class ThreeServices : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_.write("tls/server.crt", "cert\n");
    dir_.write("tls/server.key", "key\n");
    dir_.write("secrets/admin-token", "token\n");
    dir_.write("secrets/source-password", "source-pw\n");
    dir_.write("users.txt", "\"app\" \"pw\"\n\"scores_service\" \"pw2\"\n");
    dir_.write("rds-global-bundle.pem", "bundle\n");
    file_ = dir_.write("pgshift.yaml", kThreeServices);
  }
  std::string at(const std::string& rel) const { return (dir_.path() / rel).string(); }

  TempDir dir_;
  std::string file_;
  ScopedEnv rds_{"PGSHIFT_TEST_RDS_PASSWORD", "rds-pw"};
};

TEST_F(ThreeServices, LoadsWithTheRightValues) {
  auto r = load_file(file_);
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  EXPECT_TRUE(r.errors.empty());
  const Config& c = *r.config;

  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_EQ(c.listen.tls.mode, ClientTlsMode::allow);
  EXPECT_EQ(c.listen.tls.cert_file, at("tls/server.crt"));  // relative to the config file
  EXPECT_EQ(c.listen.tls.key_file, at("tls/server.key"));
  EXPECT_EQ(c.admin.token_file, at("secrets/admin-token"));
  EXPECT_EQ(c.client_auth.method, ClientAuthMethod::scram_sha_256);
  EXPECT_EQ(c.client_auth.users_file, at("users.txt"));
  EXPECT_EQ(c.limits.max_message_length, 16777216u);
  EXPECT_EQ(c.threads, 2);
  EXPECT_EQ(c.shutdown_timeout, Millis{10000});
  EXPECT_EQ(c.state_file, at("state/pgshift-state.json"));
  EXPECT_EQ(c.log_level, "debug");

  ASSERT_EQ(c.routes.size(), 3u);
  const Route& auth = c.routes[0];
  EXPECT_EQ(auth.name, "auth");
  EXPECT_EQ(auth.client_database, "user_management_db");
  EXPECT_FALSE(auth.client_user.has_value());
  EXPECT_EQ(auth.source.host, "user-management-db");
  EXPECT_EQ(auth.source.port, 5433);
  EXPECT_EQ(auth.source.database, "user_management_db");
  EXPECT_EQ(auth.source.user, "postgres");
  EXPECT_EQ(auth.source.password.value(), "source-pw");
  EXPECT_EQ(auth.source.password.describe(), "file:" + at("secrets/source-password"));
  EXPECT_EQ(auth.source.tls.mode, UpstreamTlsMode::disable);
  ASSERT_TRUE(auth.target.has_value());
  EXPECT_EQ(auth.target->host, "app.xxxx.us-east-1.rds.amazonaws.com");
  EXPECT_EQ(auth.target->port, 5432);
  EXPECT_EQ(auth.target->database, "auth_db");
  EXPECT_EQ(auth.target->user, "app");
  EXPECT_EQ(auth.target->password.value(), "rds-pw");
  EXPECT_EQ(auth.target->password.describe(), "env:PGSHIFT_TEST_RDS_PASSWORD");
  EXPECT_EQ(auth.target->connect_timeout, Millis{3000});
  EXPECT_EQ(auth.target->tls.mode, UpstreamTlsMode::verify_full);
  EXPECT_EQ(auth.target->tls.ca_file, at("rds-global-bundle.pem"));
  EXPECT_EQ(auth.pool.mode, PoolMode::transaction);
  EXPECT_EQ(auth.pool.size, 30);
  EXPECT_EQ(auth.pool.min_idle, 5);
  EXPECT_EQ(auth.pool.query_wait_timeout, Millis{5000});
  EXPECT_EQ(auth.routing_key.comment_key, "uid");
  EXPECT_EQ(auth.read_split.read_your_writes_window, Millis{500});
  EXPECT_EQ(auth.read_split.allowed_functions,
            (std::vector<std::string>{"app.current_tenant", "lower"}));
  EXPECT_DOUBLE_EQ(auth.read_split.initial_read_percent, 12.5);
  EXPECT_EQ(auth.sync.mode, SyncMode::logical);

  const Route& exercises = c.routes[1];
  EXPECT_EQ(exercises.client_database, "exercises_db");
  EXPECT_EQ(exercises.source.port, 5434);
  EXPECT_EQ(exercises.source.database, "");  // the client's database
  EXPECT_EQ(exercises.target->database, "");
  EXPECT_EQ(exercises.sync.mode, SyncMode::mirror);

  const Route& scores = c.routes[2];
  EXPECT_EQ(scores.client_user, "scores_service");
  EXPECT_TRUE(scores.source.passthrough);
  EXPECT_TRUE(scores.source.user.empty());
  EXPECT_TRUE(scores.source.password.empty());
  EXPECT_TRUE(scores.target->passthrough);
  EXPECT_EQ(scores.target->database, "scores_db");
  EXPECT_EQ(scores.target->tls.mode, UpstreamTlsMode::require);

  EXPECT_EQ(c.find_route("scores"), &scores);
  EXPECT_EQ(c.find_route("nope"), nullptr);
}

TEST_F(ThreeServices, UnsetKeysKeepTheirDefaults) {
  auto r = load_file(file_);
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  const Config& c = *r.config;
  EXPECT_EQ(c.listen.backlog, 1024);
  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.host, "127.0.0.1");

  const Route& auth = c.routes[0];
  EXPECT_EQ(auth.pool.reserve, 0);
  EXPECT_EQ(auth.pool.max_client_connections, 10000);
  EXPECT_EQ(auth.pool.server_idle_timeout, Millis{600000});
  EXPECT_EQ(auth.pool.server_lifetime, Millis{3600000});
  EXPECT_EQ(auth.pool.prepared_statement_cache_size, 256);
  EXPECT_EQ(auth.routing_key.setting, "pgshift.routing_key");
  EXPECT_EQ(auth.routing_key.startup_parameter, "pgshift.routing_key");
  EXPECT_EQ(auth.source.connect_timeout, Millis{5000});
  EXPECT_EQ(auth.target->tls.server_name, "");

  const Route& exercises = c.routes[1];
  EXPECT_EQ(exercises.pool.mode, PoolMode::session);
  EXPECT_EQ(exercises.pool.size, 20);
  EXPECT_EQ(exercises.pool.min_idle, 0);
  EXPECT_EQ(exercises.pool.query_wait_timeout, Millis{120000});
  EXPECT_EQ(exercises.routing_key.comment_key, "user_id");
  EXPECT_EQ(exercises.read_split.read_your_writes_window, Millis{2000});
  EXPECT_TRUE(exercises.read_split.allowed_functions.empty());
  EXPECT_EQ(exercises.read_split.initial_read_percent, 0.0);
  EXPECT_EQ(exercises.source.tls.mode, UpstreamTlsMode::disable);

  EXPECT_EQ(c.routes[2].sync.mode, SyncMode::none);
}

constexpr const char* kMinimal = R"(client_auth: { method: trust }
admin: { enabled: false }
routes:
  - name: all
    client_database: "*"
    source: { host: localhost, user: app }
)";

TEST(LoadString, MinimalWildcardRouteUsesDefaults) {
  auto r = load_string(kMinimal);
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  const Config& c = *r.config;
  EXPECT_EQ(c.listen.host, "127.0.0.1");
  EXPECT_EQ(c.listen.port, 6432);
  EXPECT_EQ(c.listen.tls.mode, ClientTlsMode::disable);
  EXPECT_EQ(c.admin.port, 9187);
  EXPECT_EQ(c.limits.max_message_length, 1u << 30);
  EXPECT_EQ(c.threads, 0);
  EXPECT_EQ(c.shutdown_timeout, Millis{30000});
  EXPECT_EQ(c.state_file, "pgshift-state.json");  // load_string leaves relative paths alone
  EXPECT_EQ(c.log_level, "info");
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].client_database, "*");
  EXPECT_EQ(c.routes[0].source.database, "");
  EXPECT_EQ(c.routes[0].source.port, 5432);
  EXPECT_FALSE(c.routes[0].target.has_value());
  EXPECT_TRUE(c.routes[0].source.password.empty());
}

TEST(LoadString, QuotedNumbersAndYamlBooleansAreAccepted) {
  auto r = load_string(std::string(kMinimal) + "threads: \"4\"\nlisten: { port: '7000' }\n");
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  EXPECT_EQ(r.config->threads, 4);
  EXPECT_EQ(r.config->listen.port, 7000);
}

TEST(LoadString, AnchorsAndAliasesWork) {
  auto r = load_string(R"(client_auth: { method: trust }
admin: { enabled: false }
routes:
  - name: a
    client_database: a
    source: &src { host: old-db, user: app }
    pool: &pool { mode: transaction, size: 5 }
  - name: b
    client_database: b
    source: *src
    pool: *pool
)");
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  EXPECT_EQ(r.config->routes[1].source.host, "old-db");
  EXPECT_EQ(r.config->routes[1].pool.size, 5);
  EXPECT_EQ(r.config->routes[1].pool.mode, PoolMode::transaction);
}

TEST(LoadString, SameDatabaseForDifferentUsersIsFine) {
  auto r = load_string(R"(client_auth: { method: trust }
admin: { enabled: false }
routes:
  - { name: a, client_database: app, client_user: alice, source: { host: h1, user: u } }
  - { name: b, client_database: app, client_user: bob, source: { host: h2, user: u } }
  - { name: c, client_database: app, source: { host: h3, user: u } }
)");
  EXPECT_TRUE(r.ok()) << test::dump(r.errors);
}

TEST(LoadFile, AbsolutePathsAreKept) {
  TempDir dir;
  auto users = dir.write("u/users.txt", "\"a\" \"b\"\n");
  auto file = dir.write("conf/pgshift.yaml", "client_auth: { users_file: " + users +
                                                 " }\nadmin: { enabled: false }\n"
                                                 "routes: [{ name: a, client_database: a, "
                                                 "source: { host: h, user: u } }]\n");
  auto r = load_file(file);
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  EXPECT_EQ(r.config->client_auth.users_file, users);
}

}  // namespace
}  // namespace pgshift::config
