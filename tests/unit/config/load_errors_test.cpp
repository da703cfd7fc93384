// Broken configurations: every error is reported, each with its path, line and message.
#include <gtest/gtest.h>

#include "config/load.hpp"
#include "test_util.hpp"

namespace pgshift::config {
namespace {

using test::Expected;
using test::has_exactly;
using test::testdata;

TEST(LoadErrors, ReportsEveryErrorInOneFile) {
  auto r = load_file(testdata("many_errors.yaml"));
  EXPECT_FALSE(r.ok());
  EXPECT_TRUE(has_exactly(
      r.errors,
      {
          {"listen.prot", 2, "unknown key 'prot'; did you mean 'port'?"},
          {"listen.backlog", 3, "expected an integer, got 'lots'"},
          {"admin.token_file", 4, "is required when the admin API is enabled"},
          {"client_auth.users_file", 6, "is required when method is 'md5'"},
          {"routes[0].source.port", 13, "must be between 1 and 65535, got '70000'"},
          {"routes[0].target.tls.ca_file", 19, "is required when tls.mode is 'verify-full'"},
          {"routes[0].pool.size", 20, "must be between 1 and 1000000, got '0'"},
          {"routes[0].read_split.initial_read_percent", 21, "at most two decimal places"},
          {"routes[1].name", 22, "duplicate route name 'auth' (by routes[0], line 9)"},
          {"routes[1].client_database", 23,
           "database 'user_management_db' for all users is already routed (by routes[0], "
           "line 9)"},
          {"routes[1].source.host", 24, "is required"},
          {"routes[1].sync.mode", 25, "'logical' needs a target"},
          {"routes[1].pool.mode", 26, "must be one of: session, transaction, got 'statement'"},
          {"threads", 27, "must be between 0 and 1024, got '-1'"},
          {"log_level", 28, "must be one of: debug, info, warn, error, got 'verbose'"},
      }));
}

TEST(LoadErrors, ErrorsAreSortedByLine) {
  auto r = load_file(testdata("many_errors.yaml"));
  ASSERT_FALSE(r.errors.empty());
  for (std::size_t i = 1; i < r.errors.size(); ++i) {
    EXPECT_LE(r.errors[i - 1].line, r.errors[i].line);
  }
  EXPECT_EQ(r.errors.front().to_string(),
            "listen.prot (line 2): unknown key 'prot'; did you mean 'port'?");
}

TEST(LoadErrors, SyntaxErrorHasALine) {
  auto path = testdata("syntax_error.yaml");
  auto r = load_file(path);
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u) << test::dump(r.errors);
  EXPECT_EQ(r.errors[0].path, "");
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_NE(r.errors[0].message.find("invalid YAML in " + path), std::string::npos);
  EXPECT_EQ(r.errors[0].to_string().rfind("line 4: invalid YAML", 0), 0u)
      << r.errors[0].to_string();
}

TEST(LoadErrors, WrongTypes) {
  auto r = load_file(testdata("types.yaml"));
  EXPECT_TRUE(has_exactly(
      r.errors,
      {
          {"listen", 1, "expected a mapping, got a list"},
          {"admin.token_file", 2, "is required when the admin API is enabled"},
          {"admin.enabled", 3, "expected true or false, got 'maybe'"},
          {"admin.port", 4, "expected a port number, got 'nine'"},
          {"client_auth", 5, "expected a mapping, got a scalar"},
          {"routes[0].source.host", 10, "expected a string, got a mapping"},
          {"routes[0].source.connect_timeout_ms", 12,
           "expected an integer number of milliseconds, got '5s'"},
          {"routes[0].source.password", 13, "expected a string, got a list"},
          {"routes[0].read_split.allowed_functions", 15,
           "expected a list of strings, got a scalar"},
          {"routes[0].read_split.initial_read_percent", 16, "expected a number, got 'lots'"},
          {"routes[0].pool.size", 18, "expected an integer, got '1.5'"},
          {"routes[1]", 19, "expected a mapping, got a scalar"},
          {"shutdown_timeout_ms", 20, "expected an integer number of milliseconds, got '30s'"},
      }));
}

TEST(LoadErrors, Credentials) {
  auto r = load_file(testdata("credentials.yaml"));
  EXPECT_TRUE(has_exactly(
      r.errors,
      {
          {"routes[0].source.credentials", 8,
           "passthrough needs client_auth.users_file (it holds the passwords)"},
          {"routes[0].source.user", 9, "must be absent with 'credentials: passthrough'"},
          {"routes[0].source.password", 10, "must be absent with 'credentials: passthrough'"},
          {"routes[1].source.user", 13, "is required (or set 'credentials: passthrough')"},
          {"routes[2].source.credentials", 16, "must be one of: passthrough, got 'fixed'"},
      }));
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.to_string().find("hunter2"), std::string::npos)
        << "secret leaked: " << e.to_string();
  }
}

TEST(LoadErrors, MissingAndUnreadableFiles) {
  auto r = load_file(testdata("files.yaml"));
  const std::string dir = CONFIG_TESTDATA_DIR;
  EXPECT_TRUE(has_exactly(
      r.errors,
      {
          {"listen.tls.cert_file", 2, "is required when tls.mode is 'require'"},
          {"listen.tls.key_file", 2, "is required when tls.mode is 'require'"},
          {"admin.token_file", 4,
           "cannot read '" + dir + "/no-such-token': No such file or directory"},
          {"client_auth.users_file", 7,
           "cannot read '" + dir + "/no-such-users.txt': No such file or directory"},
          {"routes[0].source.tls.ca_file", 14,
           "cannot read '" + dir + "/no-such-ca.pem': No such file or directory"},
          {"routes[0].target.tls.ca_file", 18, "is required when tls.mode is 'verify-full'"},
      }));
}

TEST(LoadErrors, Duplicates) {
  auto r = load_file(testdata("duplicates.yaml"));
  EXPECT_TRUE(has_exactly(
      r.errors, {
                    {"listen.port", 5, "duplicate key 'port' (first at line 4)"},
                    {"routes[1].client_database", 12,
                     "database 'app' for user 'alice' is already routed (by routes[0], line 7)"},
                    {"routes[2].name", 15,
                     "must contain only letters, digits, '_', '-' and '.', got 'bad name!'"},
                    {"routes[2].client_database", 16, "a wildcard must be the whole name: \"*\""},
                    {"routes[2].target", 18, "is the same server and database as source"},
                }));
}

TEST(LoadErrors, UnknownKeysGetSuggestions) {
  auto r = load_file(testdata("unknown_keys.yaml"));
  EXPECT_TRUE(has_exactly(
      r.errors,
      {
          {"listne", 3, "unknown key 'listne'; did you mean 'listen'?"},
          {"routes[0].size", 7, "unknown key 'size'; did you mean 'pool.size'?"},
          {"routes[0].mode", 8, "unknown key 'mode'; did you mean 'pool.mode' or 'sync.mode'?"},
          {"routes[0].source.hots", 9, "unknown key 'hots'; did you mean 'host'?"},
          {"routes[0].source.connect_timeout", 9,
           "unknown key 'connect_timeout'; did you mean 'connect_timeout_ms'? (durations are "
           "integer milliseconds)"},
          {"routes[0].source.host", 9, "is required"},
          {"routes[0].target.tls.ca", 10, "unknown key 'ca'"},
      }));
}

TEST(LoadErrors, MissingRequiredRouteKeys) {
  auto r = load_file(testdata("missing_route_keys.yaml"));
  EXPECT_TRUE(has_exactly(r.errors, {
                                        {"routes[0].name", 4, "is required"},
                                        {"routes[0].client_database", 4, "is required"},
                                        {"routes[0].source", 4, "is required"},
                                        {"routes[1].name", 6, "must not be empty"},
                                        {"routes[1].client_database", 7, "must not be empty"},
                                        {"routes[1].source.host", 8, "must not be empty"},
                                    }));
}

TEST(LoadErrors, EmptyConfiguration) {
  for (const char* text : {"", "# nothing\n", "routes: []\n", "routes:\n"}) {
    auto r = load_string(text);
    EXPECT_TRUE(
        has_exactly(r.errors,
                    {
                        {"routes", text[0] == 'r' ? 1 : 0, "at least one route is required"},
                        {"admin.token_file", 0, "is required when the admin API is enabled"},
                        {"client_auth.users_file", 0, "is required when method is 'scram-sha-256'"},
                    }))
        << "text: " << text;
  }
}

TEST(LoadErrors, TopLevelMustBeAMapping) {
  auto r = load_string("- a\n- b\n");
  EXPECT_TRUE(has_exactly(r.errors, {{"", 1, "the configuration must be a mapping of keys"}}));
}

TEST(LoadErrors, OnlyOneDocument) {
  auto r = load_string(
      "client_auth: { method: trust }\nadmin: { enabled: false }\n"
      "routes: [{ name: a, client_database: a, source: { host: h, user: u } }]\n---\nx: 1\n",
      "two.yaml");
  EXPECT_TRUE(has_exactly(r.errors, {{"", 5, "two.yaml holds more than one YAML document"}}));
}

TEST(LoadErrors, MissingConfigFile) {
  auto r = load_file("/nonexistent/pgshift.yaml");
  EXPECT_TRUE(has_exactly(
      r.errors, {{"", 0, "cannot read '/nonexistent/pgshift.yaml': No such file or directory"}}));
}

TEST(LoadErrors, UnresolvableSecretsNameTheSourceNeverTheValue) {
  test::TempDir dir;
  dir.write("good-password", "very-secret-file-value\n");
  test::ScopedEnv unset("PGSHIFT_TEST_UNSET_VAR", std::nullopt);
  test::ScopedEnv set("PGSHIFT_TEST_SET_VAR", "very-secret-env-value");
  auto file = dir.write("pgshift.yaml", R"(client_auth: { method: trust }
admin: { enabled: false }
routes:
  - name: a
    client_database: app
    source: { host: h, user: u, password: "${env:PGSHIFT_TEST_UNSET_VAR}" }
    target:
      host: h2
      user: u
      password: "${file:missing-password}"
  - name: b
    client_database: b
    source: { host: h, user: u, password: "${file:good-password}" }
    target: { host: h2, user: u, password: "${env:PGSHIFT_TEST_SET_VAR}", port: 0 }
  - name: c
    client_database: c
    source: { host: h, user: u, password: "${vault:very-secret-ref}" }
)");
  auto r = load_file(file);
  EXPECT_TRUE(has_exactly(
      r.errors, {
                    {"routes[0].source.password", 6,
                     "environment variable 'PGSHIFT_TEST_UNSET_VAR' is not set"},
                    {"routes[0].target.password", 10,
                     "secret file: cannot read '" + (dir.path() / "missing-password").string() +
                         "': No such file or directory"},
                    {"routes[1].target.port", 14, "must be between 1 and 65535, got '0'"},
                    {"routes[2].source.password", 17, "unsupported secret reference"},
                }));
  for (const auto& e : r.errors) {
    EXPECT_EQ(e.to_string().find("very-secret"), std::string::npos) << e.to_string();
  }
}

TEST(LoadErrors, ExplicitNullIsAMissingValue) {
  auto r = load_string(
      "client_auth: { method: trust }\nadmin: { enabled: false }\nthreads:\n"
      "routes: [{ name: a, client_database: a, source: { host: h, user: u } }]\n");
  EXPECT_TRUE(has_exactly(r.errors, {{"threads", 3, "missing value"}}));
}

TEST(LoadErrors, BadUsersFileAndEmptyTokenAreReported) {
  test::TempDir dir;
  dir.write("users.txt", "\"app\" \"pw\"\n\"broken\n");
  dir.write("token", "\n  \n");
  auto file = dir.write("pgshift.yaml", R"(admin: { token_file: token }
client_auth: { users_file: users.txt }
routes: [{ name: a, client_database: a, source: { host: h, user: u } }]
)");
  auto r = load_file(file);
  const std::string users = (dir.path() / "users.txt").string();
  const std::string token = (dir.path() / "token").string();
  EXPECT_TRUE(has_exactly(
      r.errors, {
                    {"admin.token_file", 1, "token file '" + token + "' is empty"},
                    {"client_auth.users_file", 2, users + ":2: unterminated quote in user name"},
                }));
}

TEST(LoadErrors, SharedPortWithAdmin) {
  auto r = load_string(R"(listen: { host: 0.0.0.0, port: 7000 }
admin: { port: 7000, token_file: /dev/null }
client_auth: { method: trust }
routes: [{ name: a, client_database: a, source: { host: h, user: u } }]
)");
  auto found = std::find_if(r.errors.begin(), r.errors.end(),
                            [](const ConfigError& e) { return e.path == "admin.port"; });
  ASSERT_NE(found, r.errors.end()) << test::dump(r.errors);
  EXPECT_EQ(found->line, 2);
  EXPECT_EQ(found->message, "conflicts with listen.port (7000)");
}

}  // namespace
}  // namespace pgshift::config
