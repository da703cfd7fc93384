// Hostile or broken clients (garbage, huge length prefixes, truncated startup packets,
// plaintext after SSLRequest) and SIGTERM draining, through the real pgshift binary against
// a real PostgreSQL 15. Every bad connection is closed, with an ErrorResponse where the
// protocol allows one, and pgshift keeps serving everybody else.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <signal.h>

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

// pgshift with trust client auth (so raw sockets can log in without SCRAM) and TLS allowed.
PgshiftOptions proxy_options(int shutdown_timeout_ms = 5000,
                             const std::string& pool_mode = "session") {
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.client_tls_mode = "allow";
  spec.client_cert_file = servers().ca.server_cert().string();
  spec.client_key_file = servers().ca.server_key().string();
  spec.shutdown_timeout_ms = shutdown_timeout_ms;
  spec.routes.push_back({.source = upstream_of(servers().source), .pool_mode = pool_mode});
  return {.config_yaml = spec.to_yaml(), .users = users_file_text({{"app", "app-pw"}})};
}

class ProtocolAbuseTest : public ::testing::Test {
 protected:
  RawSocket raw(const PgshiftProcess* proxy = nullptr) {
    if (!proxy) proxy = &proxy_;
    return RawSocket::connect(proxy->host(), proxy->port());
  }

  // pgshift still serves a normal client, in plaintext and over TLS.
  void expect_still_serving() {
    EXPECT_TRUE(proxy_.running());
    EXPECT_EQ(run_psql(proxy_.conninfo("app", "app-pw"), "SELECT 'alive'"), "alive");
    EXPECT_EQ(run_psql(proxy_.conninfo("app", "app-pw", "postgres", "sslmode=require"),
                       "SELECT 'alive over tls'"),
              "alive over tls");
  }

  // Reads until the peer closes and returns the first ErrorResponse's fields (empty if none).
  static std::map<char, std::string> error_then_close(RawSocket& socket) {
    const std::string bytes = socket.read_until_closed(10s);
    EXPECT_TRUE(socket.closed()) << "pgshift kept the connection open";
    auto error = first_error(bytes);
    EXPECT_TRUE(error.has_value())
        << "no ErrorResponse before the close (" << bytes.size() << " bytes)";
    return error.value_or(std::map<char, std::string>{});
  }

  // Logs in over a raw socket (trust) and reads up to the first ReadyForQuery.
  RawSocket raw_login(const std::string& application_name, const PgshiftProcess* proxy = nullptr) {
    RawSocket socket = raw(proxy);
    EXPECT_TRUE(socket.send(startup_packet(
        {{"user", "app"}, {"database", "postgres"}, {"application_name", application_name}})));
    std::string bytes;
    const auto deadline = SteadyClock::now() + 10s;
    auto ready = [&] {
      for (const auto& m : parse_backend_messages(bytes)) {
        if (m.type == 'Z') return true;
      }
      return false;
    };
    while (!ready() && !socket.closed() && SteadyClock::now() < deadline) {
      bytes += socket.receive(
          1, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()));
    }
    EXPECT_TRUE(ready()) << "no ReadyForQuery after a trust login";
    return socket;
  }

  std::string backends_named(const std::string& application_name) {
    return servers()
        .source
        .exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
              application_name + "'")
        .scalar();
  }

  PgshiftProcess proxy_{proxy_options()};
};

TEST_F(ProtocolAbuseTest, GarbageBytesGetAnErrorAndClose) {
  {
    // An HTTP request: its first four bytes read as a ~1.2 GB startup length.
    RawSocket socket = raw();
    socket.send("GET / HTTP/1.1\r\nHost: pgshift\r\n\r\n");
    const auto error = error_then_close(socket);
    EXPECT_EQ(error.count('C') ? error.at('C') : "", "08P01");
    EXPECT_THAT(error.count('M') ? error.at('M') : "", HasSubstr("invalid startup packet"));
  }
  expect_still_serving();
  {
    // A plausible length with an unknown protocol code and binary noise.
    RawSocket socket = raw();
    socket.send(be32(16) + be32(0x12345678) + std::string("\x01\xff\x00\x7f\x80\x10\x00\x00", 8));
    error_then_close(socket);
  }
  expect_still_serving();
  {
    // A length below the minimum.
    RawSocket socket = raw();
    socket.send(be32(3) + "xyz");
    error_then_close(socket);
  }
  expect_still_serving();
}

TEST_F(ProtocolAbuseTest, TwoGibibyteLengthPrefixIsRefused) {
  {
    RawSocket socket = raw();
    socket.send(be32(0x80000000u) + be32(196608) + "user");
    const auto error = error_then_close(socket);
    EXPECT_EQ(error.count('C') ? error.at('C') : "", "08P01");
  }
  expect_still_serving();
  {
    // After login: a Query message claiming 2 GiB ends the session (and its server side).
    RawSocket socket = raw_login("abuse-2gib");
    EXPECT_EQ(backends_named("abuse-2gib"), "1");
    socket.send(std::string("Q") + be32(0x80000000u) + "SELECT 1;");
    const auto error = error_then_close(socket);
    EXPECT_EQ(error.count('C') ? error.at('C') : "", "08P01");
  }
  expect_still_serving();
  {
    // After login: a message length below 4.
    RawSocket socket = raw_login("abuse-short");
    socket.send(std::string("Q") + be32(2));
    const auto error = error_then_close(socket);
    EXPECT_EQ(error.count('C') ? error.at('C') : "", "08P01");
  }
  expect_still_serving();
}

TEST_F(ProtocolAbuseTest, TruncatedStartupPacket) {
  const std::string startup = startup_packet({{"user", "app"}, {"database", "postgres"}});
  {
    // Part of a startup packet, then the client goes away.
    RawSocket socket = raw();
    socket.send(startup.substr(0, 11));
    socket.shutdown_write();
    socket.read_until_closed(10s);
    EXPECT_TRUE(socket.closed());
  }
  expect_still_serving();
  // Part of a startup packet, then silence: pgshift keeps them (until its login timeout) and
  // serves others meanwhile.
  std::vector<RawSocket> idle;
  for (std::size_t cut : {1u, 4u, 9u, 20u}) {
    idle.push_back(raw());
    idle.back().send(startup.substr(0, cut));
  }
  expect_still_serving();
  PgConnection other(proxy_.conninfo("app", "app-pw"));
  EXPECT_EQ(other.scalar("SELECT 'served while others stall'"), "served while others stall");
  for (auto& socket : idle) {
    socket.receive(1, 50ms);
    EXPECT_FALSE(socket.closed());
  }
}

// The transaction-mode relay reads with one system call per message (Stream::
// read_some_drained): epoll is edge-triggered, so a FIN that comes in the same event as the
// client's last bytes raises no event of its own. Each client first runs a query (so its
// session is hot: it waits in such a read), then pgshift is stopped (SIGSTOP) while the
// client writes and closes, so that both wait in one event when it goes on.
TEST_F(ProtocolAbuseTest, ClientClosingRightAfterItsLastBytesIsSeenInTransactionMode) {
  PgshiftProcess txn(proxy_options(5000, "transaction"));
  const std::string sql("SELECT 'answer'\0", 16);
  const std::string query =
      std::string("Q") + be32(4 + static_cast<std::uint32_t>(sql.size())) + sql;
  auto hot_client = [&](const std::string& name) {
    RawSocket socket = raw_login(name, &txn);
    EXPECT_TRUE(socket.send(query));
    std::string bytes;
    const auto deadline = SteadyClock::now() + 10s;
    while (bytes.find("answer") == std::string::npos && !socket.closed() &&
           SteadyClock::now() < deadline) {
      bytes += socket.receive(1, 1s);
    }
    EXPECT_NE(bytes.find("answer"), std::string::npos) << "the first query was not answered";
    return socket;
  };
  {
    // Half a Query, then the close: pgshift must not wait for the rest.
    RawSocket socket = hot_client("eof-mid-message");
    txn.send_signal(SIGSTOP);
    socket.send(query.substr(0, 10));
    socket.shutdown_write();
    txn.send_signal(SIGCONT);
    socket.read_until_closed(10s);
    EXPECT_TRUE(socket.closed()) << "pgshift kept a connection whose client left mid-message";
  }
  {
    // A whole Query, then the close: the session ends (the sweep of hot sessions looks at
    // the socket again within 1-2 s).
    RawSocket socket = hot_client("eof-after-query");
    txn.send_signal(SIGSTOP);
    socket.send(query);
    socket.shutdown_write();
    txn.send_signal(SIGCONT);
    socket.read_until_closed(10s);
    EXPECT_TRUE(socket.closed()) << "pgshift kept a half-closed connection";
  }
  PgConnection other(txn.conninfo("app", "app-pw"));
  EXPECT_EQ(other.scalar("SELECT 'still serving'"), "still serving");
}

TEST_F(ProtocolAbuseTest, PlaintextAfterSslRequestClosesWithoutTls) {
  const std::string startup = startup_packet({{"user", "app"}, {"database", "postgres"}});
  {
    // SSLRequest and a plaintext startup packet in the same write: the plaintext was sent
    // before any handshake (CVE-2021-23214), so the connection is dropped unanswered.
    RawSocket socket = raw();
    socket.send(ssl_request() + startup);
    const std::string bytes = socket.read_until_closed(10s);
    EXPECT_TRUE(socket.closed());
    EXPECT_EQ(bytes.find('S'), std::string::npos) << "pgshift agreed to TLS";
    EXPECT_EQ(first_error(bytes), std::nullopt) << "no plaintext answer is allowed here";
  }
  expect_still_serving();
  {
    // SSLRequest answered 'S', then plaintext instead of a TLS ClientHello.
    RawSocket socket = raw();
    socket.send(ssl_request());
    EXPECT_EQ(socket.receive(1, 10s), "S");
    socket.send(startup);
    socket.read_until_closed(10s);
    EXPECT_TRUE(socket.closed());
  }
  expect_still_serving();
}

// ---- SIGTERM ----

std::string count_rows(const std::string& table) {
  return servers().source.exec("SELECT count(*) FROM " + table).scalar();
}

TEST(SigtermTest, OpenTransactionCommitsThenPgshiftExitsZero) {
  servers().source.exec("DROP TABLE IF EXISTS drain_t; CREATE TABLE drain_t (id int)");
  PgshiftProcess proxy(proxy_options(/*shutdown_timeout_ms=*/30000));
  const std::string c = proxy.conninfo("app", "app-pw", "postgres", "application_name=drain-txn");
  PgConnection in_txn(c);
  PgConnection idle(proxy.conninfo("app", "app-pw", "postgres", "application_name=drain-idle"));
  in_txn.exec("BEGIN; INSERT INTO drain_t VALUES (1)");

  const auto signalled = SteadyClock::now();
  proxy.send_signal(SIGTERM);
  // No new clients; the idle session is closed right away.
  ASSERT_TRUE(wait_until([&] { return !port_accepts(proxy.host(), proxy.port()); }, 10s,
                         "pgshift to stop accepting"));
  // It was told why: libpq hands an ErrorResponse that arrives while idle to the notice
  // receiver (PQisBusy parses what PQconsumeInput read). Nothing is sent, so no race with
  // the close.
  EXPECT_TRUE(wait_until(
      [&] {
        const bool eof = PQconsumeInput(idle.native()) == 0;
        PQisBusy(idle.native());
        return eof || !idle.notices().empty();
      },
      10s, "the idle client to see the close"));
  ASSERT_FALSE(idle.notices().empty()) << "no ErrorResponse before the close";
  EXPECT_THAT(idle.notices()[0],
              HasSubstr("FATAL:  terminating connection due to administrator command"));
  EXPECT_THROW(idle.exec("SELECT 1"), PgError);

  // The open transaction finishes normally.
  in_txn.exec("INSERT INTO drain_t VALUES (2)");
  in_txn.exec("COMMIT");
  EXPECT_EQ(count_rows("drain_t"), "2");

  // Its session then ends, and pgshift exits 0 without waiting for the 30 s timeout.
  const auto status = proxy.process().wait_for(15s);
  ASSERT_TRUE(status.has_value()) << "pgshift did not exit after its last session ended\n"
                                  << proxy.log();
  EXPECT_TRUE(status->success()) << status->to_string() << "\n" << proxy.log();
  EXPECT_LT(SteadyClock::now() - signalled, 15s);
  EXPECT_THAT(proxy.log(), HasSubstr("graceful shutdown"));
}

TEST(SigtermTest, ShutdownTimeoutEndsAStuckTransaction) {
  servers().source.exec("DROP TABLE IF EXISTS stuck_t; CREATE TABLE stuck_t (id int)");
  PgshiftProcess proxy(proxy_options(/*shutdown_timeout_ms=*/1500));
  PgConnection in_txn(proxy.conninfo("app", "app-pw", "postgres", "application_name=drain-stuck"));
  in_txn.exec("BEGIN; INSERT INTO stuck_t VALUES (1)");
  const auto signalled = SteadyClock::now();
  proxy.send_signal(SIGTERM);
  const auto status = proxy.process().wait_for(15s);
  ASSERT_TRUE(status.has_value()) << "pgshift did not exit after its shutdown timeout";
  EXPECT_TRUE(status->success()) << status->to_string() << "\n" << proxy.log();
  EXPECT_GE(SteadyClock::now() - signalled, 1400ms);
  EXPECT_THROW(in_txn.exec("COMMIT"), PgError);
  // The server rolls the abandoned transaction back once its connection is gone.
  EXPECT_TRUE(wait_until(
      [] {
        return servers()
                   .source
                   .exec(
                       "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                       "'drain-stuck'")
                   .scalar() == "0";
      },
      10s, "the abandoned backend to exit"));
  EXPECT_EQ(count_rows("stuck_t"), "0");
}

}  // namespace
}  // namespace pgshift::test
