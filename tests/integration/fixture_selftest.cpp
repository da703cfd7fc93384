// Checks the integration-test fixture itself (tests/support) against a real PostgreSQL 15:
// TLS with the generated CA, restart on the same port, reload of HBA rules, roles with MD5,
// child processes, ports, waiting, and PgshiftProcess driven by a fake pgshift.
#include <gmock/gmock.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>

#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct Servers {
  CertAuthority ca;
  PgCluster pg{{.name = "selftest",
                .settings = {{"max_connections", "50"}, {"wal_level", "logical"}},
                .tls = ca.server()}};
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

std::string verify_full(const std::filesystem::path& root_cert) {
  return "sslmode=verify-full sslrootcert=" + conninfo_quote(root_cert.string());
}

TEST(PgClusterTest, SettingsAreApplied) {
  EXPECT_EQ(servers().pg.psql("SHOW wal_level"), "logical");
  EXPECT_EQ(servers().pg.exec("SHOW max_connections").scalar(), "50");
  EXPECT_EQ(servers().pg.psql("SELECT current_user"), "postgres");
}

TEST(PgClusterTest, PsqlOverTlsWithVerifyFull) {
  const PgCluster& pg = servers().pg;
  const std::string conninfo =
      pg.conninfo({}, std::nullopt, "postgres", verify_full(servers().ca.ca_cert()));
  EXPECT_EQ(run_psql(conninfo, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), "t");
}

TEST(PgClusterTest, TlsFailsWithWrongCa) {
  const PgCluster& pg = servers().pg;
  const CommandResult result =
      try_psql(pg.conninfo({}, std::nullopt, "postgres", verify_full(servers().ca.wrong_ca_cert())),
               "SELECT 1");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_THAT(result.err, HasSubstr("certificate verify failed"));
}

TEST(PgClusterTest, TlsFailsWithWrongHostname) {
  // Connect to 127.0.0.1 but verify the name "db.wrong.example", which the SAN lacks.
  const PgCluster& pg = servers().pg;
  const std::string conninfo =
      "host=db.wrong.example hostaddr=127.0.0.1 port=" + std::to_string(pg.port()) +
      " user=postgres password=" + conninfo_quote(pg.superuser_password()) + " " +
      verify_full(servers().ca.ca_cert());
  EXPECT_THAT(connect_error(conninfo), HasSubstr("does not match host name"));
}

TEST(PgClusterTest, ExecReturnsRowsAndNulls) {
  const QueryResult result = servers().pg.exec(
      "SELECT x, CASE WHEN x = 2 THEN NULL ELSE x * 10 END AS y "
      "FROM generate_series(1, 3) AS x");
  ASSERT_EQ(result.size(), 3u);
  EXPECT_EQ(result.columns, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(result.at(2, 1), "30");
  EXPECT_FALSE(result.rows[1][1].has_value());
  EXPECT_EQ(result.command_status, "SELECT 3");
}

TEST(PgClusterTest, SqlErrorsCarrySqlstate) {
  try {
    servers().pg.exec("SELECT * FROM no_such_table");
    FAIL() << "expected PgError";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "42P01");
  }
}

TEST(PgClusterTest, RolesWithScramAndMd5) {
  PgCluster& pg = servers().pg;
  pg.create_role("selftest_scram", "scram pass'word");
  pg.create_role("selftest_md5", "md5-password", AuthMethod::md5);
  pg.create_database("selftest_db", "selftest_scram");

  EXPECT_EQ(
      pg.psql("SELECT current_user || '@' || current_database()", "selftest_db", "selftest_scram"),
      "selftest_scram@selftest_db");
  EXPECT_EQ(pg.psql("SELECT current_user", "postgres", "selftest_md5"), "selftest_md5");
  EXPECT_EQ(pg.exec("SELECT left(rolpassword, 3) FROM pg_authid "
                    "WHERE rolname = 'selftest_md5'")
                .scalar(),
            "md5");
  EXPECT_THAT(connect_error(pg.conninfo("selftest_md5", "wrong")),
              HasSubstr("password authentication failed"));
  EXPECT_THAT(connect_error(pg.conninfo("selftest_scram", "wrong")),
              HasSubstr("password authentication failed"));
}

TEST(PgClusterTest, AddHbaReloadsBeforeReturning) {
  PgCluster& pg = servers().pg;
  pg.create_role("selftest_blocked", "pw");
  EXPECT_EQ(connect_error(pg.conninfo("selftest_blocked")), "");
  pg.add_hba({.user = "selftest_blocked", .method = AuthMethod::reject});
  EXPECT_THAT(connect_error(pg.conninfo("selftest_blocked")), HasSubstr("rejects connection"));
}

TEST(PgClusterTest, RestartKeepsThePort) {
  PgCluster& pg = servers().pg;
  const auto port = pg.port();
  const std::string started = pg.psql("SELECT pg_postmaster_start_time()");
  pg.restart();
  EXPECT_EQ(pg.port(), port);
  EXPECT_NE(pg.psql("SELECT pg_postmaster_start_time()"), started);
  EXPECT_EQ(pg.psql("SELECT 1"), "1");
}

TEST(PgClusterTest, RawSocketSeesSslResponseAndClose) {
  RawSocket socket = RawSocket::connect(servers().pg.host(), servers().pg.port());
  // SSLRequest: length 8, code 80877103.
  ASSERT_TRUE(socket.send(std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8)));
  EXPECT_EQ(socket.receive(1, 5s), "S");
  socket.send("this is not a TLS ClientHello");
  socket.read_until_closed(5s);
  EXPECT_TRUE(socket.closed());
}

TEST(PgClusterTest, SecondClusterWithoutTls) {
  PgCluster plain({.name = "plain", .tls_only = false});
  EXPECT_NE(plain.port(), servers().pg.port());
  EXPECT_EQ(plain.psql("SHOW ssl"), "off");
  EXPECT_THAT(
      try_psql(plain.conninfo({}, std::nullopt, "postgres", "sslmode=require"), "SELECT 1").err,
      HasSubstr("does not support SSL"));
  const auto data_dir = plain.data_dir();
  plain.stop();
  EXPECT_FALSE(plain.running());
  EXPECT_TRUE(std::filesystem::exists(data_dir));
}

TEST(PgClusterTest, TlsOnlyClusterRejectsPlaintext) {
  PgCluster strict({.name = "strict", .tls = servers().ca.server(), .tls_only = true});
  EXPECT_EQ(connect_error(strict.conninfo({}, std::nullopt, "postgres", "sslmode=require")), "");
  EXPECT_THAT(connect_error(strict.conninfo({}, std::nullopt, "postgres", "sslmode=disable")),
              HasSubstr("no encryption"));
}

TEST(ProcessTest, CapturesOutputAndExitCode) {
  const CommandResult result = run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "out\n");
  EXPECT_EQ(result.err, "err\n");
  EXPECT_FALSE(result.timed_out);
}

TEST(ProcessTest, TimeoutTerminatesTheProcessGroup) {
  const auto start = SteadyClock::now();
  const CommandResult result = run_command({"sh", "-c", "sleep 30; echo never"}, 200ms);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.exit_code, 128 + SIGTERM);
  EXPECT_EQ(result.out, "");
  EXPECT_LT(SteadyClock::now() - start, 10s);
}

TEST(ProcessTest, EnvCwdAndStdinPipe) {
  TempDir dir("selftest-cwd");
  ProcessOptions options;
  options.argv = {"sh", "-c", "pwd; echo \"$SELFTEST_VAR\"; cat"};
  options.env["SELFTEST_VAR"] = "value 42";
  options.cwd = dir.path();
  options.stdin_pipe = true;
  Process process(std::move(options));
  process.write_stdin("from stdin\n");
  process.close_stdin();
  EXPECT_TRUE(process.wait().success());
  EXPECT_EQ(process.stdout_text(), dir.path().string() + "\nvalue 42\nfrom stdin\n");
}

TEST(ProcessTest, TerminateReportsTheSignal) {
  Process process(std::vector<std::string>{"sleep", "30"});
  EXPECT_TRUE(process.running());
  EXPECT_FALSE(process.wait_for(50ms).has_value());
  const ExitStatus status = process.terminate(5s);
  EXPECT_EQ(status.signal, SIGTERM);
  EXPECT_FALSE(process.running());
}

TEST(ProcessTest, MissingProgramThrows) {
  EXPECT_THROW(run_command({"pgshift-no-such-program"}), std::system_error);
  EXPECT_THROW(run_command({"/nonexistent/program"}), std::system_error);
}

TEST(NetTest, FreePortIsFreshAndBindable) {
  const auto a = free_port();
  const auto b = free_port();
  EXPECT_NE(a, b);
  EXPECT_FALSE(port_accepts("127.0.0.1", a));
  EXPECT_TRUE(port_accepts("127.0.0.1", servers().pg.port()));
}

TEST(WaitTest, WaitUntilPollsAndNamesWhatOnTimeout) {
  int calls = 0;
  EXPECT_TRUE(wait_until([&] { return ++calls == 5; }, 5s, "five calls"));
  EXPECT_EQ(calls, 5);
  EXPECT_NONFATAL_FAILURE(EXPECT_FALSE(wait_until([] { return false; }, 30ms, "the impossible")),
                          "waiting for the impossible");
}

TEST(TempDirTest, RemovedOnDestruction) {
  std::filesystem::path path;
  {
    TempDir dir("selftest");
    path = dir.path();
    write_file(dir / "a.txt", "hello");
    std::filesystem::create_directories(dir / "sub" / "deeper");
    write_file(dir / "sub" / "deeper" / "b.txt", "x");
    dir.chown_to("postgres");
    EXPECT_EQ(read_file(dir / "a.txt"), "hello");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(CertAuthorityTest, IssuesMoreCertificates) {
  const ServerCert other = servers().ca.issue("other", {"other.example"});
  const CommandResult verify = run_command(
      {"openssl", "verify", "-CAfile", servers().ca.ca_cert().string(), other.cert.string()});
  EXPECT_TRUE(verify.success()) << verify.describe();
  EXPECT_EQ(std::filesystem::status(other.key).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
}

TEST(ConfigSpecTest, YamlHasTheCommonShape) {
  ConfigSpec spec;
  spec.routes.push_back({.source = upstream_of(servers().pg, {}, "app")});
  UpstreamSpec pass{
      .port = 6543, .passthrough = true, .tls_mode = "verify-full", .ca_file = "/ca \"x\".crt"};
  spec.routes.push_back({.name = "pass", .client_database = "db", .source = pass});
  const std::string yaml = spec.to_yaml();
  EXPECT_THAT(yaml, HasSubstr("  port: {{port}}\n"));
  EXPECT_THAT(yaml, HasSubstr("      port: " + std::to_string(servers().pg.port()) + "\n"));
  EXPECT_THAT(yaml, HasSubstr("      database: \"app\"\n"));
  EXPECT_THAT(yaml, HasSubstr("      password: \"postgres-test-password\"\n"));
  EXPECT_THAT(yaml, HasSubstr("      credentials: passthrough\n"));
  EXPECT_THAT(yaml, HasSubstr("        ca_file: \"/ca \\\"x\\\".crt\"\n"));
}

// Keeps the builder honest against the real config loader (skipped until pgshift is built).
TEST(ConfigSpecTest, RealPgshiftCheckConfigAcceptsTheYaml) {
  if (!std::filesystem::exists(pgshift_binary())) {
    GTEST_SKIP() << "no pgshift binary at " << pgshift_binary();
  }
  ConfigSpec spec;
  RouteSpec fixed{.source = upstream_of(servers().pg)};
  fixed.source.tls_mode = "verify-full";
  fixed.source.ca_file = servers().ca.ca_cert().string();
  spec.routes.push_back(fixed);
  UpstreamSpec pass = upstream_of(servers().pg);
  pass.user.clear();
  pass.password.clear();
  pass.passthrough = true;
  spec.routes.push_back({.name = "pass", .client_database = "app", .source = pass});
  PgshiftProcess check({.config_yaml = spec.to_yaml(),
                        .users = users_file_text({{"alice", "pw"}}),
                        .args = {"check-config", "{{config_file}}"},
                        .wait_ready = false});
  const auto status = check.process().wait_for(30s);
  ASSERT_TRUE(status.has_value()) << "pgshift check-config did not finish";
  EXPECT_TRUE(status->success()) << status->to_string() << "\n"
                                 << read_file(check.config_file()) << "\n"
                                 << check.log();
}

// A stand-in for the pgshift binary: reads "  port: N" from the config it is given, then
// listens there until SIGTERM (exit 0).
constexpr const char* kFakePgshift = R"sh(#!/bin/sh
[ "$1" = --config ] || exit 64
port=$(sed -n 's/^  port: \([0-9][0-9]*\)$/\1/p' "$2" | head -n 1)
echo "fake pgshift listening on $port"
exec /usr/bin/python3 -c '
import signal, socket, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("ready", flush=True)
while True:
    s.accept()[0].close()
' "$port"
)sh";

TEST(PgshiftProcessTest, StartsWaitsAndTerminatesGracefully) {
  TempDir bin("fake-pgshift");
  write_file(bin / "pgshift", kFakePgshift, std::filesystem::perms::owner_all);
  ConfigSpec spec;
  spec.routes.push_back({.source = upstream_of(servers().pg)});
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(),
                        .users = users_file_text({{"alice", "secret \"quoted\""}}),
                        .binary = bin / "pgshift"});
  EXPECT_TRUE(port_accepts(proxy.host(), proxy.port()));
  EXPECT_TRUE(proxy.wait_for_log("ready"));
  EXPECT_THAT(proxy.log(), HasSubstr("listening on " + std::to_string(proxy.port())));
  EXPECT_EQ(read_file(proxy.users_file()), "\"alice\" \"secret \"\"quoted\"\"\"\n");
  const std::string config = read_file(proxy.config_file());
  EXPECT_THAT(config, HasSubstr("port: " + std::to_string(servers().pg.port())));
  EXPECT_THAT(config, HasSubstr(proxy.admin_token_file().string()));
  EXPECT_EQ(read_file(proxy.admin_token_file()), proxy.admin_token() + "\n");
  EXPECT_TRUE(proxy.terminate(10s).success());
}

TEST(PgshiftProcessTest, ReportsEarlyExitWithItsOutput) {
  TempDir bin("fake-pgshift");
  write_file(bin / "pgshift",
             "#!/bin/sh\necho 'config error: routes[0].source.host: required'\nexit 2\n",
             std::filesystem::perms::owner_all);
  try {
    PgshiftProcess proxy({.config_yaml = "listen: {port: {{port}}}\n", .binary = bin / "pgshift"});
    FAIL() << "expected the constructor to throw";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("exited (exit 2) before listening"));
    EXPECT_THAT(e.what(), HasSubstr("routes[0].source.host: required"));
  }
}

TEST(PgshiftProcessTest, UnknownPlaceholderIsAnError) {
  TempDir bin("fake-pgshift");
  write_file(bin / "pgshift", kFakePgshift, std::filesystem::perms::owner_all);
  EXPECT_THROW(PgshiftProcess({.config_yaml = "port: {{prot}}\n", .binary = bin / "pgshift"}),
               std::invalid_argument);
}

}  // namespace
}  // namespace pgshift::test
