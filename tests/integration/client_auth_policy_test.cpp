// Per-user and per-address client authentication (client_auth.hba_file, issue 14 item 7) and
// the failed-login throttle (client_auth.throttle, issue 16 item 7), against a real
// PostgreSQL 15 cluster. pgshift listens on "::" (dual stack), so one test can be a client
// from two addresses: 127.0.0.1 (seen as IPv4) and ::1.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

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
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

const auto kUsers = std::vector<std::pair<std::string, std::string>>{
    {"app", "app-pw"}, {"tls_only", "tls-pw"}, {"plain_only", "plain-pw"}, {"blocked", "b-pw"}};

bool ipv6_loopback_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

// pgshift listening on "::" with client TLS allowed, client_auth.hba_file = pg_hba.conf in
// its directory and `throttle` (a YAML flow mapping, or empty) under client_auth.
PgshiftOptions options(const std::string& hba, const std::string& throttle = {}) {
  ConfigSpec spec;
  spec.client_tls_mode = "allow";
  spec.client_cert_file = servers().ca.server_cert().string();
  spec.client_key_file = servers().ca.server_key().string();
  spec.routes.push_back({.source = upstream_of(servers().source)});
  std::string yaml = spec.to_yaml();
  const std::string users_line = "  users_file: \"{{users_file}}\"\n";
  std::string extra = "  hba_file: \"{{dir}}/pg_hba.conf\"\n";
  if (!throttle.empty()) extra += "  throttle: " + throttle + "\n";
  yaml.replace(yaml.find(users_line), users_line.size(), users_line + extra);
  return {.config_yaml = yaml,
          .users = users_file_text(kUsers),
          .files = {{"pg_hba.conf", hba}},
          .host = "::",
          .wait_ready = false};
}

// Starts pgshift and waits until it accepts connections (PgshiftProcess's own wait speaks
// IPv4 addresses only).
std::unique_ptr<PgshiftProcess> start(PgshiftOptions o) {
  auto proxy = std::make_unique<PgshiftProcess>(std::move(o));
  const bool up =
      wait_until([&] { return !proxy->running() || port_accepts("127.0.0.1", proxy->port()); }, 15s,
                 "pgshift to listen");
  if (!up || !proxy->running()) throw std::runtime_error("pgshift did not start:\n" + proxy->log());
  return proxy;
}

// A client from `address` ("127.0.0.1" or "::1").
std::string conninfo(const PgshiftProcess& proxy, const std::string& address,
                     const std::string& user, const std::string& password,
                     const std::string& sslmode = "disable") {
  std::string c = "hostaddr=" + address + " port=" + std::to_string(proxy.port()) +
                  " user=" + user + " dbname=postgres sslmode=" + sslmode;
  if (!password.empty()) c += " password=" + conninfo_quote(password);
  return c;
}

double metric(const PgshiftProcess& proxy, const std::string& name,
              const std::map<std::string, std::string>& labels) {
  return metric_value(fetch_metrics(proxy), name, labels).value_or(-1);
}

void write_hba(const PgshiftProcess& proxy, const std::string& text) {
  std::ofstream(proxy.dir() / "pg_hba.conf", std::ios::trunc) << text;
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

constexpr const char* kPolicy =
    "# TYPE    DATABASE USER        ADDRESS        METHOD\n"
    "host      all      monitor     127.0.0.1/32   trust\n"
    "host      all      monitor     ::1/128        reject\n"
    "host      all      blocked     all            reject\n"
    "hostssl   all      tls_only    all            scram-sha-256\n"
    "hostnossl all      plain_only  all            scram-sha-256\n"
    "host      all      app         all            scram-sha-256\n";

TEST(HbaPolicyTest, RulesPickTheMethodPerUserAddressAndTls) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  auto proxy = start(options(kPolicy));
  const std::string v4 = "127.0.0.1", v6 = "::1";

  // The monitoring user needs no password from 127.0.0.1, and is refused from ::1.
  EXPECT_EQ(run_psql(conninfo(*proxy, v4, "monitor", ""), "SELECT 'trusted'"), "trusted");
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v6, "monitor", "")),
              AllOf(HasSubstr("28000"), HasSubstr("pg_hba.conf rejects connection for host "
                                                  "\"::1\", user \"monitor\", database "
                                                  "\"postgres\", no encryption")));
  // The application logs in with SCRAM from anywhere; a wrong password is 28P01.
  EXPECT_EQ(run_psql(conninfo(*proxy, v6, "app", "app-pw"), "SELECT 'scram'"), "scram");
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v4, "app", "nope")),
              AllOf(HasSubstr("28P01"), HasSubstr("password authentication failed")));
  // A rejected role, with the right password, and a role no rule names.
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v4, "blocked", "b-pw")),
              AllOf(HasSubstr("28000"), HasSubstr("pg_hba.conf rejects connection for host "
                                                  "\"127.0.0.1\", user \"blocked\"")));
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v4, "nobody", "x")),
              AllOf(HasSubstr("28000"),
                    HasSubstr("no pg_hba.conf entry for host \"127.0.0.1\", user \"nobody\", "
                              "database \"postgres\", no encryption")));
  // hostssl and hostnossl against TLS and plaintext clients.
  EXPECT_EQ(run_psql(conninfo(*proxy, v4, "tls_only", "tls-pw", "require"), "SELECT 'over tls'"),
            "over tls");
  EXPECT_THAT(
      connect_error_verbose(conninfo(*proxy, v4, "tls_only", "tls-pw", "disable")),
      AllOf(HasSubstr("28000"), HasSubstr("user \"tls_only\""), HasSubstr("no encryption")));
  EXPECT_EQ(run_psql(conninfo(*proxy, v4, "plain_only", "plain-pw", "disable"), "SELECT 'plain'"),
            "plain");
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v4, "plain_only", "plain-pw", "require")),
              AllOf(HasSubstr("28000"), HasSubstr("no pg_hba.conf entry"),
                    HasSubstr("user \"plain_only\""), HasSubstr("SSL encryption")));

  EXPECT_GE(metric(*proxy, "pgshift_client_login_failures_total", {{"reason", "hba_rejected"}}), 5);
  EXPECT_THAT(proxy->log(), HasSubstr("no matching rule in"));
  EXPECT_THAT(proxy->log(), ::testing::Not(HasSubstr("b-pw")));
}

// The `replication` keyword matches physical replication connections only, and `all` does
// not match them, as in PostgreSQL; the refusal uses PostgreSQL's replication wording.
TEST(HbaPolicyTest, ReplicationConnectionsMatchOnlyTheReplicationKeyword) {
  auto proxy =
      start(options("host replication all 127.0.0.1/32 reject\n"
                    "host all app all scram-sha-256\n"));
  EXPECT_THAT(
      connect_error_verbose(conninfo(*proxy, "127.0.0.1", "app", "app-pw") + " replication=true"),
      AllOf(HasSubstr("28000"), HasSubstr("pg_hba.conf rejects replication connection "
                                          "for host \"127.0.0.1\", user \"app\", no "
                                          "encryption")));
  EXPECT_EQ(run_psql(conninfo(*proxy, "127.0.0.1", "app", "app-pw"), "SELECT 'not replication'"),
            "not replication");
  auto all_only = start(options("host all all all scram-sha-256\n"));
  EXPECT_THAT(connect_error_verbose(conninfo(*all_only, "127.0.0.1", "app", "app-pw") +
                                    " replication=true"),
              AllOf(HasSubstr("28000"), HasSubstr("no pg_hba.conf entry for replication "
                                                  "connection from host \"127.0.0.1\"")));
}

TEST(HbaPolicyTest, SighupReloadsTheRulesAndABadFileKeepsTheOldOnes) {
  auto proxy = start(options("host all app all scram-sha-256\n"));
  const std::string monitor = conninfo(*proxy, "127.0.0.1", "monitor", "");
  EXPECT_THAT(connect_error_verbose(monitor), HasSubstr("no pg_hba.conf entry"));

  write_hba(*proxy, "host all monitor 127.0.0.1/32 trust\nhost all app all scram-sha-256\n");
  proxy->send_signal(SIGHUP);
  ASSERT_TRUE(wait_until([&] { return connect_error_verbose(monitor).empty(); }, 20s,
                         "the reloaded rules to trust monitor"));

  // A bad file is refused whole, with its file and line; the running rules stay.
  write_hba(*proxy, "host all app all scram-sha-256\nlocal all all trust\n");
  proxy->send_signal(SIGHUP);
  ASSERT_TRUE(proxy->wait_for_log("reload rejected"));
  const std::string log = proxy->log();
  EXPECT_THAT(log, AllOf(HasSubstr("pg_hba.conf:2: "), HasSubstr("'local' rules are not")));
  EXPECT_EQ(connect_error_verbose(monitor), "");
  EXPECT_EQ(run_psql(conninfo(*proxy, "127.0.0.1", "app", "app-pw"), "SELECT 1"), "1");
}

TEST(HbaPolicyTest, CheckConfigReportsFileAndLine) {
  PgshiftOptions o = options("host all all 127.0.0.1/32 trust\nhost all all db.example md5\n");
  o.args = {"check-config", "{{config_file}}"};
  PgshiftProcess check(std::move(o));
  const auto status = check.process().wait_for(30s);
  ASSERT_TRUE(status.has_value()) << "pgshift check-config did not finish";
  EXPECT_EQ(status->exit_code, 1) << check.log();
  EXPECT_THAT(check.log(), AllOf(HasSubstr("client_auth.hba_file"), HasSubstr("pg_hba.conf:2: "),
                                 HasSubstr("host names are not supported")));
}

// ---- failed-login throttle ----

constexpr const char* kAnyoneWithPassword = "host all all all scram-sha-256\n";

double throttled(const PgshiftProcess& proxy, const std::string& action) {
  return metric(proxy, "pgshift_client_auth_throttled_total",
                {{"action", action}, {"key", "address"}});
}

// Budget of two failures per address and a token per minute: the third attempt waits (a
// reservation a minute ahead), every later one is refused at once. No per-user budget.
TEST(AuthThrottleTest, GuessingFromOneAddressIsRefusedWhileOtherAddressesLogIn) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  auto proxy = start(options(kAnyoneWithPassword,
                             "{failures_burst: 2, user_failures_burst: 0, "
                             "failure_interval_ms: 60000, max_delay_ms: 60000}"));
  const std::string v4 = "127.0.0.1", v6 = "::1";
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v4, "app", "guess")), HasSubstr("28P01"));
  }
  // The third attempt is held before its exchange: the client hears nothing while it waits.
  RawSocket waiting = RawSocket::connect(v4, proxy->port());
  ASSERT_TRUE(waiting.send(startup_packet({{"user", "app"}, {"database", "postgres"}})));
  ASSERT_TRUE(wait_until([&] { return throttled(*proxy, "delayed") == 1; }, 10s,
                         "the third attempt to be delayed"));
  EXPECT_TRUE(waiting.receive(1, 0ms).empty());

  // Everything else from 127.0.0.1 is refused with 53300, the right password too.
  const std::string refused = connect_error_verbose(conninfo(*proxy, v4, "app", "guess"));
  EXPECT_THAT(refused, AllOf(HasSubstr("53300"),
                             HasSubstr("too many failed authentication attempts from host "
                                       "\"127.0.0.1\"")));
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, v4, "app", "app-pw")), HasSubstr("53300"));

  // Three processes' worth of guessing: all refused, logged once.
  std::atomic<int> refusals{0};
  std::vector<std::thread> guessers;
  for (int t = 0; t < 3; ++t) {
    guessers.emplace_back([&] {
      for (int i = 0; i < 15; ++i) {
        std::string e = connect_error_verbose(conninfo(*proxy, v4, "app", "guess"));
        if (e.find("53300") != std::string::npos) ++refusals;
      }
    });
  }
  for (auto& g : guessers) g.join();
  EXPECT_EQ(refusals.load(), 45);
  EXPECT_EQ(throttled(*proxy, "refused"), 47);
  EXPECT_EQ(metric(*proxy, "pgshift_client_login_failures_total", {{"reason", "throttled"}}), 47);
  EXPECT_EQ(count(proxy->log(), "client authentication throttled"), 1u) << proxy->log();
  // Refusals are not logged one by one (the two wrong passwords before the burst are).
  EXPECT_EQ(count(proxy->log(), "client authentication failed"), 2u) << proxy->log();

  // Another address is not slowed down: its good login takes no budget and waits for none.
  EXPECT_EQ(run_psql(conninfo(*proxy, v6, "app", "app-pw"), "SELECT 'other address'"),
            "other address");
  EXPECT_EQ(throttled(*proxy, "delayed"), 1);
  EXPECT_EQ(throttled(*proxy, "refused"), 47);
}

// The per-user budget: guesses at one user's password from two addresses exhaust it; that
// user is refused from any address (53300 "for user"), other users are not affected.
// max_delay_ms 0: no waiting, an empty bucket refuses at once.
TEST(AuthThrottleTest, GuessingOneUserFromManyAddressesIsRefusedForThatUserOnly) {
  if (!ipv6_loopback_available()) GTEST_SKIP() << "no IPv6 loopback (::1)";
  auto proxy = start(options(kAnyoneWithPassword,
                             "{failures_burst: 100, user_failures_burst: 2, "
                             "failure_interval_ms: 60000, max_delay_ms: 0}"));
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, "127.0.0.1", "victim", "a")),
              HasSubstr("28P01"));
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, "::1", "victim", "b")), HasSubstr("28P01"));
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, "::1", "victim", "c")),
              AllOf(HasSubstr("53300"),
                    HasSubstr("too many failed authentication attempts for user \"victim\"")));
  EXPECT_EQ(metric(*proxy, "pgshift_client_auth_throttled_total",
                   {{"action", "refused"}, {"key", "user"}}),
            1);
  EXPECT_EQ(run_psql(conninfo(*proxy, "::1", "app", "app-pw"), "SELECT 'app'"), "app");
  EXPECT_EQ(run_psql(conninfo(*proxy, "127.0.0.1", "app", "app-pw"), "SELECT 'app'"), "app");
}

// A delayed attempt goes on after its wait. Budget of one attempt per address, a token
// every 3 s: client A takes the token and keeps its exchange open (a reservation held until
// it ends), so client B, right behind it, must wait for the next token, and is then asked
// for its password (AuthenticationSASL) like any client.
TEST(AuthThrottleTest, ADelayedAttemptProceedsAfterItsWait) {
  auto proxy = start(options(kAnyoneWithPassword,
                             "{failures_burst: 1, user_failures_burst: 0, "
                             "failure_interval_ms: 3000, max_delay_ms: 60000}"));
  const auto startup = startup_packet({{"user", "app"}, {"database", "postgres"}});
  // One wrong password uses up the address's budget of 1 (a clean address is never held
  // back, however many logins run at once).
  EXPECT_THAT(connect_error_verbose(conninfo(*proxy, "127.0.0.1", "app", "nope")),
              HasSubstr("28P01"));
  RawSocket b = RawSocket::connect("127.0.0.1", proxy->port());
  ASSERT_TRUE(b.send(startup));
  ASSERT_TRUE(wait_until([&] { return throttled(*proxy, "delayed") == 1; }, 10s,
                         "the second attempt to be delayed"));
  std::string reply_b;
  ASSERT_TRUE(wait_until(
      [&] {
        reply_b += b.receive(1, 50ms);
        return !reply_b.empty() || b.closed();
      },
      30s, "pgshift to ask for the password after the delay"));
  ASSERT_FALSE(reply_b.empty());
  EXPECT_EQ(reply_b[0], 'R') << "expected AuthenticationSASL, got: " << reply_b;
  EXPECT_EQ(throttled(*proxy, "refused"), 0);
}

}  // namespace
}  // namespace pgshift::test
