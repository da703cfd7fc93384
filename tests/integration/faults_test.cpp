// Faults and hostile input (issue 16): every refusal looks like PostgreSQL's own, with an
// ErrorResponse first. Real PostgreSQL 15, the real pgshift binary, raw sockets and psql.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <ctime>
#include <fstream>

#include "tests/integration/helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct Servers {
  CertAuthority ca;
  PgCluster source{{.name = "source"}};
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

constexpr std::uint32_t kSslRequest = 80877103;
constexpr std::uint32_t kGssEncRequest = 80877104;

std::string request(std::uint32_t code) {
  return be32(8) + be32(code);
}

// pgshift with trust client auth (raw sockets log in without SCRAM).
PgshiftOptions proxy_options(const std::string& client_tls_mode = "disable",
                             const std::string& log_level = "info",
                             const std::string& pool_mode = "session") {
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.client_tls_mode = client_tls_mode;
  if (client_tls_mode != "disable") {
    spec.client_cert_file = servers().ca.server_cert().string();
    spec.client_key_file = servers().ca.server_key().string();
  }
  spec.log_level = log_level;
  spec.routes.push_back({.source = upstream_of(servers().source), .pool_mode = pool_mode});
  return {.config_yaml = spec.to_yaml(), .users = users_file_text({{"app", "app-pw"}})};
}

// Sends the requests one by one (reading each one-byte answer), then reads to the close.
// Returns the answers and the final ErrorResponse, if any.
struct Negotiation {
  std::string answers;
  std::optional<std::map<char, std::string>> error;
  bool closed = false;
};
Negotiation negotiate(const std::string& host, std::uint16_t port,
                      const std::vector<std::uint32_t>& codes) {
  RawSocket socket = RawSocket::connect(host, port);
  Negotiation out;
  std::string rest;
  for (std::uint32_t code : codes) {
    if (!socket.send(request(code))) break;
    std::string got = socket.receive(1, 10s);
    if (got.empty()) break;
    if (got[0] == 'N' || got[0] == 'S' || got[0] == 'G') {
      out.answers += got[0];
      rest = got.substr(1);
    } else {
      rest = got;
      break;
    }
  }
  rest += socket.read_until_closed(10s);
  out.closed = socket.closed();
  out.error = first_error(rest);
  return out;
}

// ---- 16.10: SSLRequest twice, GSSENCRequest ----

TEST(EncryptionRequestTest, SecondSslRequestIsRefusedAsPostgresDoes) {
  PgshiftProcess proxy(proxy_options());
  Negotiation direct =
      negotiate(servers().source.host(), servers().source.port(), {kSslRequest, kSslRequest});
  Negotiation via = negotiate(proxy.host(), proxy.port(), {kSslRequest, kSslRequest});
  // PostgreSQL 15 (no TLS configured): 'N', then the second request is read as a startup
  // packet of protocol 1234.5679.
  ASSERT_EQ(direct.answers, "N");
  ASSERT_TRUE(direct.error.has_value());
  EXPECT_EQ(via.answers, "N");
  ASSERT_TRUE(via.error.has_value()) << "no ErrorResponse before the close";
  EXPECT_TRUE(via.closed);
  EXPECT_EQ((*via.error)['C'], (*direct.error)['C']);
  EXPECT_EQ((*via.error)['M'], (*direct.error)['M']);
  EXPECT_EQ((*via.error)['S'], "FATAL");
  EXPECT_EQ((*via.error)['M'],
            "unsupported frontend protocol 1234.5679: server supports 3.0 to 3.0");
}

TEST(EncryptionRequestTest, SecondGssEncRequestIsRefused) {
  PgshiftProcess proxy(proxy_options());
  Negotiation via = negotiate(proxy.host(), proxy.port(), {kGssEncRequest, kGssEncRequest});
  EXPECT_EQ(via.answers, "N");
  ASSERT_TRUE(via.error.has_value());
  EXPECT_EQ((*via.error)['C'], "0A000");
  EXPECT_EQ((*via.error)['M'],
            "unsupported frontend protocol 1234.5680: server supports 3.0 to 3.0");
}

// libpq's order with gssencmode=prefer and sslmode=prefer: GSSENCRequest, then SSLRequest,
// then the startup packet; each request is allowed once.
TEST(EncryptionRequestTest, GssEncThenSslThenStartupLogsIn) {
  PgshiftProcess proxy(proxy_options());
  RawSocket socket = RawSocket::connect(proxy.host(), proxy.port());
  ASSERT_TRUE(socket.send(request(kGssEncRequest)));
  EXPECT_EQ(socket.receive(1, 10s), "N");
  ASSERT_TRUE(socket.send(request(kSslRequest)));
  EXPECT_EQ(socket.receive(1, 10s), "N");
  ASSERT_TRUE(socket.send(startup_packet({{"user", "app"}, {"database", "postgres"}})));
  std::string bytes;
  const auto deadline = SteadyClock::now() + 10s;
  auto ready = [&] {
    for (const auto& m : parse_backend_messages(bytes)) {
      if (m.type == 'Z') return true;
    }
    return false;
  };
  while (!ready() && !socket.closed() && SteadyClock::now() < deadline) {
    bytes += socket.receive(1, 1s);
  }
  EXPECT_TRUE(ready()) << "no ReadyForQuery";
  EXPECT_EQ(first_error(bytes), std::nullopt);
}

// A Kerberos credential cache (MIT FILE format, version 4) holding one unusable TGT for
// app@PGSHIFT.TEST, valid for a day. With it libpq believes GSSAPI credentials exist and
// really sends a GSSENCRequest under gssencmode=prefer (without one it never asks).
void write_fake_ccache(const std::filesystem::path& path) {
  auto u32 = [](std::uint32_t v) { return be32(v); };
  auto counted = [&](const std::string& s) {
    return u32(static_cast<std::uint32_t>(s.size())) + s;
  };
  auto principal = [&](std::uint32_t type, const std::vector<std::string>& parts) {
    std::string out =
        u32(type) + u32(static_cast<std::uint32_t>(parts.size())) + counted("PGSHIFT.TEST");
    for (const auto& p : parts) out += counted(p);
    return out;
  };
  const auto now = static_cast<std::uint32_t>(std::time(nullptr));
  const std::string client = principal(1, {"app"});
  std::string cred = client + principal(2, {"krbtgt", "PGSHIFT.TEST"});
  cred += std::string("\x00\x12", 2) + counted(std::string(32, '\0'));  // aes256 key
  cred += u32(now) + u32(now) + u32(now + 86400) + u32(now + 86400);
  cred += std::string(1, '\0') + u32(0x40e10000) + u32(0) + u32(0);
  cred += counted(std::string("\x61\x03\x02\x01\x05", 5)) + counted("");
  std::ofstream(path, std::ios::binary) << std::string("\x05\x04\x00\x00", 4) << client << cred;
}

TEST(EncryptionRequestTest, LibpqGssEncModePreferFallsBackCleanly) {
  PgshiftProcess proxy(proxy_options("allow", "debug"));
  const auto ccache = proxy.dir() / "krb5cc";
  write_fake_ccache(ccache);
  for (const std::string sslmode : {"disable", "require"}) {
    ProcessOptions options;
    options.argv = {
        pg_tool("psql").string(),
        "-X",
        "-A",
        "-t",
        "-q",
        "-d",
        proxy.conninfo("app", "app-pw", "postgres", "gssencmode=prefer sslmode=" + sslmode),
        "-c",
        "SELECT 'fell back', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"};
    options.unset_env = libpq_environment_variables();
    options.env["KRB5CCNAME"] = "FILE:" + ccache.string();
    const CommandResult result = run_command(std::move(options), 30s);
    ASSERT_TRUE(result.success()) << sslmode << ": " << result.describe();
    // The backend's own TLS is pgshift's upstream side (plaintext here); the point is that
    // the client got through after the 'N'.
    EXPECT_THAT(result.out, HasSubstr("fell back")) << sslmode;
  }
  EXPECT_THAT(proxy.log(), HasSubstr("GSSENCRequest answered N"))
      << "libpq never sent a GSSENCRequest: the test did not test anything";
}

// ---- 16.3: a protocol violation gets an ErrorResponse (08P01) before the close ----

// Logs in over a raw socket (trust) and reads up to the first ReadyForQuery.
RawSocket raw_login(const PgshiftProcess& proxy) {
  RawSocket socket = RawSocket::connect(proxy.host(), proxy.port());
  EXPECT_TRUE(socket.send(startup_packet({{"user", "app"}, {"database", "postgres"}})));
  std::string bytes;
  const auto deadline = SteadyClock::now() + 10s;
  auto ready = [&] {
    for (const auto& m : parse_backend_messages(bytes)) {
      if (m.type == 'Z') return true;
    }
    return false;
  };
  while (!ready() && !socket.closed() && SteadyClock::now() < deadline) {
    bytes += socket.receive(1, 1s);
  }
  EXPECT_TRUE(ready()) << "no ReadyForQuery after a trust login";
  return socket;
}

// Reads until an ErrorResponse has arrived and then the close (or 10 s); returns the first
// ErrorResponse's fields.
std::map<char, std::string> error_then_close(RawSocket& socket) {
  const std::string bytes = socket.read_until_closed(10s);
  EXPECT_TRUE(socket.closed()) << "pgshift kept the connection open";
  auto error = first_error(bytes);
  EXPECT_TRUE(error.has_value()) << "a bare close (" << bytes.size() << " bytes before it)";
  return error.value_or(std::map<char, std::string>{});
}

class ProtocolViolationTest : public ::testing::TestWithParam<std::string> {
 protected:
  PgshiftProcess proxy_{proxy_options("disable", "info", GetParam())};
};

TEST_P(ProtocolViolationTest, UnknownMessageType) {
  RawSocket socket = raw_login(proxy_);
  socket.send(frontend_message('y', "junk"));
  const auto error = error_then_close(socket);
  if (error.empty()) ADD_FAILURE() << proxy_.log();
  EXPECT_EQ(error.count('C') ? error.at('C') : "", "08P01");
  EXPECT_EQ(error.count('S') ? error.at('S') : "", "FATAL");
}

TEST_P(ProtocolViolationTest, QueryWithoutTerminatingNul) {
  RawSocket socket = raw_login(proxy_);
  socket.send(frontend_message('Q', "SELECT 1"));  // no NUL
  // PostgreSQL answers ERROR 08P01 "invalid string in message" and stays; pgshift may end
  // the session instead, but never without saying so.
  std::string bytes;
  const auto deadline = SteadyClock::now() + 10s;
  while (!first_error(bytes) && !socket.closed() && SteadyClock::now() < deadline) {
    bytes += socket.receive(1, 1s);
  }
  const auto error = first_error(bytes);
  ASSERT_TRUE(error.has_value()) << "no ErrorResponse (closed: " << socket.closed() << ")";
  EXPECT_EQ(error->at('C'), "08P01");
}

TEST_P(ProtocolViolationTest, MessageAfterTerminate) {
  RawSocket socket = raw_login(proxy_);
  socket.send(frontend_message('X', "") + frontend_message('Q', std::string("SELECT 1") + '\0'));
  const auto error = error_then_close(socket);
  EXPECT_EQ(error.count('C') ? error.at('C') : "", "08P01");
}

INSTANTIATE_TEST_SUITE_P(PoolModes, ProtocolViolationTest,
                         ::testing::Values("session", "transaction"));

// ---- 16.3: SIGTERM tells the clients it ends, as PostgreSQL's SIGTERM does ----

// Waits for the FATAL that arrives while conn is idle (libpq hands it to the notice
// receiver) or for the close; returns the notices seen.
std::vector<std::string> notices_until_closed(PgConnection& conn) {
  wait_until(
      [&] {
        const bool eof = PQconsumeInput(conn.native()) == 0;
        PQisBusy(conn.native());
        return eof || !conn.notices().empty();
      },
      15s, "the client to see the end of its session");
  return conn.notices();
}

class SigtermTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SigtermTest, IdleAndInTransactionClientsGetFatal57P01) {
  PgshiftOptions options = proxy_options();
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.shutdown_timeout_ms = 1000;
  spec.routes.push_back({.source = upstream_of(servers().source), .pool_mode = GetParam()});
  options.config_yaml = spec.to_yaml();
  PgshiftProcess proxy(std::move(options));
  PgConnection idle(proxy.conninfo("app", "app-pw"));
  PgConnection in_txn(proxy.conninfo("app", "app-pw"));
  EXPECT_EQ(idle.scalar("SELECT 'idle'"), "idle");
  in_txn.exec("BEGIN; SELECT 1");
  proxy.send_signal(SIGTERM);
  // The idle client is ended at once, the transaction when the shutdown timeout passes.
  for (PgConnection* conn : {&idle, &in_txn}) {
    const auto notices = notices_until_closed(*conn);
    ASSERT_FALSE(notices.empty()) << "a bare close\n" << proxy.log();
    EXPECT_THAT(notices[0],
                HasSubstr("FATAL:  terminating connection due to administrator command"));
  }
  const auto status = proxy.process().wait_for(15s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->to_string();
}

INSTANTIATE_TEST_SUITE_P(PoolModes, SigtermTest, ::testing::Values("session", "transaction"));

// ---- 16.5: restart-only settings on reload ----

TEST(ReloadTest, RestartOnlySettingsWarnAndKeepTheirRunningValue) {
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.routes.push_back({.source = upstream_of(servers().source), .pool_mode = "session"});
  PgshiftProcess proxy({.config_yaml = spec.to_yaml(), .users = users_file_text({})});
  EXPECT_EQ(run_psql(proxy.conninfo("app", "x"), "SELECT 1"), "1");
  ASSERT_TRUE(port_accepts("127.0.0.1", proxy.admin_port()));

  // pool.mode and admin.port change, and so does a reloadable key (log_level).
  const std::uint16_t new_admin_port = free_port();
  spec.routes[0].pool_mode = "transaction";
  spec.log_level = "debug";
  std::string yaml = spec.to_yaml();
  const std::string admin = "  port: {{admin_port}}\n";
  yaml.replace(yaml.find(admin), admin.size(), "  port: " + std::to_string(new_admin_port) + "\n");
  proxy.write_config(yaml);
  proxy.send_signal(SIGHUP);
  ASSERT_TRUE(proxy.wait_for_log("configuration reloaded")) << proxy.log();
  const std::string log = proxy.log();
  EXPECT_THAT(log, HasSubstr("\"key\":\"routes[main].pool.mode\",\"running\":\"session\","
                             "\"configured\":\"transaction\""));
  EXPECT_THAT(log, HasSubstr("\"key\":\"admin.port\""));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("\"key\":\"log_level\"")));

  // The running values stay: sessions are still in session mode, the admin API is where it
  // was; the reloadable change took effect (debug lines appear).
  EXPECT_EQ(
      run_psql(proxy.conninfo("app", "x", "postgres", "application_name=after-reload"), "SELECT 2"),
      "2");
  RawSocket::connect(proxy.host(), proxy.port()).shutdown_write();  // logged at debug level
  EXPECT_TRUE(proxy.wait_for_log("\"level\":\"debug\""));
  EXPECT_THAT(proxy.log(), ::testing::Not(HasSubstr("\"pool_mode\":\"transaction\"")));
  EXPECT_TRUE(port_accepts("127.0.0.1", proxy.admin_port()));
  EXPECT_FALSE(port_accepts("127.0.0.1", new_admin_port));
}

// ---- 16.6: SCRAM does not reveal which users exist ----

// The salt and iteration count pgshift offers `user` in its SCRAM server-first-message
// ("s=...,i=4096"), read over a raw socket (the exchange is then abandoned).
std::string scram_salt_offered(const PgshiftProcess& proxy, const std::string& user) {
  RawSocket socket = RawSocket::connect(proxy.host(), proxy.port());
  socket.send(startup_packet({{"user", user}, {"database", "postgres"}}));
  auto next = [&](char type) -> std::string {
    std::string bytes;
    const auto deadline = SteadyClock::now() + 10s;
    while (SteadyClock::now() < deadline && !socket.closed()) {
      for (const auto& m : parse_backend_messages(bytes)) {
        if (m.type == type) return m.body;
      }
      bytes += socket.receive(1, 1s);
    }
    return {};
  };
  const std::string sasl = next('R');
  if (sasl.size() < 4 || read_be32(sasl, 0) != 10) return "no AuthenticationSASL";
  const std::string first = "n,,n=,r=fyko+d2lbbFgONRv9qkxdawL";
  socket.send(frontend_message('p', std::string("SCRAM-SHA-256") + '\0' +
                                        be32(static_cast<std::uint32_t>(first.size())) + first));
  const std::string cont = next('R');
  if (cont.size() < 4 || read_be32(cont, 0) != 11) return "no AuthenticationSASLContinue";
  const std::string server_first = cont.substr(4);
  return server_first.substr(server_first.find(",s="));
}

TEST(ScramEnumerationTest, UnknownUsersLookLikeKnownOnes) {
  // "stored" has a SCRAM secret (salt fixed in the secret), "plain" a plaintext password,
  // "hashed" only an md5 hash (cannot do SCRAM).
  const std::string secret =
      "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$"
      "2mSHT7vxyyc5POjZhNTp9bdfmVn7Q4NQc3wTtIVbHbk=:"
      "bmVBvEkcxgHGY8RvaRRhp7Hr2C5+M73CQwXl2DYzIeE=";
  ConfigSpec spec;
  spec.client_auth_method = "scram-sha-256";
  spec.routes.push_back({.source = upstream_of(servers().source)});
  PgshiftProcess proxy(
      {.config_yaml = spec.to_yaml(),
       .users = users_file_text(
           {{"stored", secret}, {"plain", "plain-pw"}, {"hashed", "md5" + std::string(32, 'a')}})});
  const std::string stored = scram_salt_offered(proxy, "stored");
  EXPECT_EQ(stored, ",s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096");
  for (const std::string user : {"nobody", "plain", "hashed"}) {
    const std::string first = scram_salt_offered(proxy, user);
    ASSERT_TRUE(first.starts_with(",s=")) << user << ": " << first;
    EXPECT_TRUE(first.ends_with(",i=4096")) << user << ": " << first;
    EXPECT_EQ(scram_salt_offered(proxy, user), first) << user << ": the salt changed";
  }
  EXPECT_NE(scram_salt_offered(proxy, "nobody"), scram_salt_offered(proxy, "nobody-else"));
  // Wrong user and wrong password: the same error, at the same step.
  auto error_for = [&](const std::string& user, const std::string& password) {
    std::string e = connect_error_verbose(proxy.conninfo(user, password));
    const auto at = e.find(user);
    if (at != std::string::npos) e.replace(at, user.size(), "<user>");
    return e;
  };
  const std::string wrong_password = error_for("plain", "not-the-password");
  EXPECT_THAT(wrong_password,
              HasSubstr("FATAL:  28P01: password authentication failed for user \"<user>\""));
  EXPECT_EQ(error_for("nobody", "whatever"), wrong_password);
  EXPECT_EQ(error_for("hashed", "whatever"), wrong_password);
  EXPECT_EQ(error_for("stored", "whatever"), wrong_password);
}

// ---- 14.5 / 16.3: a login that cannot complete ends with an ErrorResponse ----

// Pool of one server held by another client, a long query_wait_timeout and a short login
// timeout: a second client's login can only time out while waiting for the upstream (as if
// its backend were blocked at startup).
PgshiftOptions saturated_options() {
  PgshiftOptions options = proxy_options();
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.client_tls_mode = "allow";
  spec.client_cert_file = servers().ca.server_cert().string();
  spec.client_key_file = servers().ca.server_key().string();
  spec.routes.push_back({.source = upstream_of(servers().source), .pool_size = 1});
  std::string yaml = spec.to_yaml();
  const std::string size = "      size: 1\n";  // pool keys: one "pool:" mapping per route
  yaml.replace(yaml.find(size), size.size(), size + "      query_wait_timeout_ms: 30000\n");
  options.config_yaml = yaml + "limits:\n  login_timeout_ms: 1000\n";
  return options;
}

TEST(LoginTimeoutTest, WaitingForTheUpstreamEndsWithFatal08006) {
  PgshiftProcess proxy(saturated_options());
  PgConnection holder(proxy.conninfo("app", "app-pw"));
  EXPECT_EQ(holder.scalar("SELECT 'holding the only server'"), "holding the only server");
  for (const std::string sslmode : {"disable", "require"}) {
    SCOPED_TRACE(sslmode);
    const auto start = SteadyClock::now();
    const std::string error =
        connect_error_verbose(proxy.conninfo("app", "app-pw", "postgres", "sslmode=" + sslmode));
    EXPECT_THAT(error, HasSubstr("FATAL:  08006: could not get a server connection for "
                                 "database \"postgres\" within 1000 ms"));
    EXPECT_THAT(error, ::testing::Not(HasSubstr("SSL SYSCALL")));
    EXPECT_GE(SteadyClock::now() - start, 900ms);
  }
  EXPECT_THAT(proxy.log(), HasSubstr("\"phase\":\"upstream\""));
  // The pool is consistent afterwards: once the holder leaves, logins work again.
  holder = PgConnection(servers().source.conninfo());
  EXPECT_EQ(run_psql(proxy.conninfo("app", "app-pw"), "SELECT 'served again'"), "served again");
}

TEST(LoginTimeoutTest, SilentClientGetsAnErrorBeforeTheClose) {
  PgshiftProcess proxy(saturated_options());
  // Half a startup packet, then silence.
  RawSocket socket = RawSocket::connect(proxy.host(), proxy.port());
  socket.send(startup_packet({{"user", "app"}, {"database", "postgres"}}).substr(0, 9));
  const std::string bytes = socket.read_until_closed(10s);
  EXPECT_TRUE(socket.closed());
  const auto error = first_error(bytes);
  ASSERT_TRUE(error.has_value()) << "a bare close";
  EXPECT_EQ(error->at('S'), "FATAL");
  EXPECT_EQ(error->at('C'), "57014");
  EXPECT_EQ(error->at('M'), "canceling authentication due to timeout");
}

}  // namespace
}  // namespace pgshift::test
