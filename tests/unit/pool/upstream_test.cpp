// connect_upstream and send_cancel against a real PostgreSQL 15 (see pg_cluster.hpp).
#include "pool/upstream.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/tcp.hpp>
#include <cstdio>
#include <memory>

#include "pg_cluster.hpp"
#include "pool/errc.hpp"
#include "test_util.hpp"
#include "wire/auth.hpp"
#include "wire/builder.hpp"

namespace pgshift::pool::test {
namespace {

using namespace std::chrono_literals;
using config::UpstreamTlsMode;
using Clock = std::chrono::steady_clock;

// One cluster for the whole binary: started before the first test, stopped after the last.
class ClusterEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    try {
      cluster = std::make_unique<PgCluster>();
    } catch (const std::exception& e) {
      setup_error = e.what();
    }
  }
  void TearDown() override { cluster.reset(); }
  static inline std::unique_ptr<PgCluster> cluster;
  static inline std::string setup_error;
};
[[maybe_unused]] auto* const environment =
    ::testing::AddGlobalTestEnvironment(new ClusterEnvironment);

class UpstreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = ClusterEnvironment::cluster.get();
    ASSERT_TRUE(cluster_) << ClusterEnvironment::setup_error;
  }

  static UpstreamParams params(const std::string& user, const std::string& password) {
    UpstreamParams p;
    p.host = "127.0.0.1";
    p.port = cluster_->port();
    p.database = "postgres";
    p.credentials.user = user;
    p.credentials.password = password;
    p.connect_timeout = 10s;
    p.startup_params = {{"application_name", "pgshift-upstream-test"}};
    return p;
  }
  static UpstreamParams scram_params() {
    return params(PgCluster::scram_user, PgCluster::scram_password);
  }
  static void use_tls(UpstreamParams& p, UpstreamTlsMode mode, const std::string& ca_file) {
    config::UpstreamTls tls;
    tls.mode = mode;
    tls.ca_file = ca_file;
    p.tls_mode = mode;
    p.tls_context = make_upstream_tls_context(tls);
  }

  struct Outcome {
    std::optional<ConnInfo> conn;  // set if connected
    ConnectError error;
    std::string ssl;  // pg_stat_ssl.ssl of the session ("t"/"f"), if connected
    Clock::duration elapsed{};
  };
  // Connects, and if that worked, asks the server whether the session uses TLS.
  static Outcome connect(const UpstreamParams& p) {
    return run_io([&]() -> asio::awaitable<Outcome> {
      Outcome out;
      const auto start = Clock::now();
      auto conn = co_await connect_upstream(p, out.error);
      out.elapsed = Clock::now() - start;
      if (!conn) std::fprintf(stderr, "  connect error: %s\n", out.error.message.c_str());
      if (conn) {
        out.conn = info_of(*conn);
        auto r = co_await simple_query(
            *conn, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()", 10s);
        if (!r.first_column.empty()) out.ssl = r.first_column[0];
        conn->stream.close();
      }
      co_return out;
    });
  }

  static inline PgCluster* cluster_ = nullptr;
};

TEST_F(UpstreamTest, ScramOverPlainTcp) {
  auto out = connect(scram_params());
  ASSERT_TRUE(out.conn) << out.error.message;
  EXPECT_FALSE(out.conn->tls);
  EXPECT_EQ(out.ssl, "false");
  EXPECT_EQ(out.conn->txn_status, 'I');
  EXPECT_NE(out.conn->backend_key.pid, 0);
  EXPECT_EQ(out.conn->parameter("server_version").substr(0, 3), "15.");
  EXPECT_EQ(out.conn->parameter("application_name"), "pgshift-upstream-test");
}

TEST_F(UpstreamTest, ScramPassthroughWithClientAndServerKeys) {
  const std::string stored =
      cluster_->psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'");
  auto secret = wire::parse_scram_secret(stored.substr(0, stored.find('\n')));
  ASSERT_TRUE(secret) << stored;
  auto derived =
      wire::make_scram_secret(PgCluster::scram_password, secret->salt, secret->iterations);
  ASSERT_TRUE(derived.client_key);
  auto p = params(PgCluster::scram_user, "");
  p.credentials.scram_client_key = *derived.client_key;
  p.credentials.scram_server_key = derived.server_key;
  auto out = connect(p);
  ASSERT_TRUE(out.conn) << out.error.message;

  // A server key that does not match: the server's signature must be refused.
  p.credentials.scram_server_key->at(0) ^= 0xff;
  out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(std::error_code(wire::errc::auth_failed)))
      << out.error.message;
  EXPECT_NE(out.error.message.find("SCRAM signature"), std::string::npos) << out.error.message;
}

TEST_F(UpstreamTest, VerifyFullWithRightCaAndHostLocalhost) {
  auto p = scram_params();
  p.host = "localhost";  // may resolve to ::1 first, where nothing listens: next address
  use_tls(p, UpstreamTlsMode::verify_full, cluster_->ca_file());
  auto out = connect(p);
  ASSERT_TRUE(out.conn) << out.error.message;
  EXPECT_TRUE(out.conn->tls);
  EXPECT_EQ(out.ssl, "true");
}

TEST_F(UpstreamTest, VerifyFullWithIpAddressInCertificate) {
  auto p = scram_params();
  use_tls(p, UpstreamTlsMode::verify_full, cluster_->ca_file());
  auto out = connect(p);
  ASSERT_TRUE(out.conn) << out.error.message;
  EXPECT_EQ(out.ssl, "true");
}

TEST_F(UpstreamTest, VerifyFullWithWrongCaFails) {
  auto p = scram_params();
  p.host = "localhost";
  use_tls(p, UpstreamTlsMode::verify_full, cluster_->wrong_ca_file());
  auto out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_FALSE(out.error.from_server());
  EXPECT_NE(out.error.message.find("TLS handshake with localhost:" + std::to_string(p.port) +
                                   " failed: certificate verify failed"),
            std::string::npos)
      << out.error.message;
}

TEST_F(UpstreamTest, VerifyFullWithHostNameNotInCertificateFails) {
  auto p = scram_params();
  p.tls_server_name = "wrong.example";
  use_tls(p, UpstreamTlsMode::verify_full, cluster_->ca_file());
  auto out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_NE(out.error.message.find("hostname mismatch"), std::string::npos) << out.error.message;
}

TEST_F(UpstreamTest, VerifyCaDoesNotCheckTheHostName) {
  auto p = scram_params();
  p.tls_server_name = "wrong.example";
  use_tls(p, UpstreamTlsMode::verify_ca, cluster_->ca_file());
  auto out = connect(p);
  ASSERT_TRUE(out.conn) << out.error.message;
  EXPECT_EQ(out.ssl, "true");

  use_tls(p, UpstreamTlsMode::verify_ca, cluster_->wrong_ca_file());
  out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_NE(out.error.message.find("certificate verify failed"), std::string::npos);
}

TEST_F(UpstreamTest, RequireEncryptsWithoutCa) {
  auto p = scram_params();
  use_tls(p, UpstreamTlsMode::require, "");
  auto out = connect(p);
  ASSERT_TRUE(out.conn) << out.error.message;
  EXPECT_EQ(out.ssl, "true");
}

TEST_F(UpstreamTest, BadCaFileIsAClearStartupError) {
  config::UpstreamTls tls;
  tls.mode = UpstreamTlsMode::verify_full;
  tls.ca_file = "/nonexistent/ca.pem";
  try {
    make_upstream_tls_context(tls);
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/ca.pem"), std::string::npos) << e.what();
  }
}

TEST_F(UpstreamTest, Md5WithPlaintextAndWithStoredHash) {
  auto out = connect(params(PgCluster::md5_user, PgCluster::md5_password));
  ASSERT_TRUE(out.conn) << out.error.message;
  out = connect(params(PgCluster::md5_user,
                       wire::md5_stored_hash(PgCluster::md5_user, PgCluster::md5_password)));
  ASSERT_TRUE(out.conn) << out.error.message;
}

TEST_F(UpstreamTest, CleartextPassword) {
  auto out = connect(params(PgCluster::clear_user, PgCluster::clear_password));
  ASSERT_TRUE(out.conn) << out.error.message;

  // A stored md5 hash cannot answer a cleartext request.
  out = connect(params(PgCluster::clear_user,
                       wire::md5_stored_hash(PgCluster::clear_user, PgCluster::clear_password)));
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::missing_credentials)) << out.error.message;
}

TEST_F(UpstreamTest, WrongPasswordRelaysSqlstate28P01) {
  for (auto [user, mode] : {std::pair{PgCluster::scram_user, UpstreamTlsMode::disable},
                            std::pair{PgCluster::scram_user, UpstreamTlsMode::require},
                            std::pair{PgCluster::md5_user, UpstreamTlsMode::disable},
                            std::pair{PgCluster::clear_user, UpstreamTlsMode::disable}}) {
    auto p = params(user, "not-the-password");
    if (mode != UpstreamTlsMode::disable) use_tls(p, mode, "");
    auto out = connect(p);
    ASSERT_FALSE(out.conn) << user;
    EXPECT_TRUE(out.error.from_server());
    EXPECT_EQ(out.error.sqlstate, "28P01") << out.error.message;
    EXPECT_EQ(out.error.ec, error_code(errc::server_error));
    EXPECT_NE(out.error.server_message.find("password authentication failed"), std::string::npos);
    EXPECT_EQ(out.error.message.find("not-the-password"), std::string::npos);
  }
}

TEST_F(UpstreamTest, UnknownDatabaseRelaysSqlstate3D000) {
  auto p = scram_params();
  p.database = "no_such_database";
  auto out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.sqlstate, "3D000") << out.error.message;
  EXPECT_NE(out.error.server_message.find("no_such_database"), std::string::npos);
}

TEST_F(UpstreamTest, UnrecognisedProtocolOptionFailsClearly) {
  auto p = scram_params();
  p.startup_params.emplace_back("_pq_.pgshift_test", "1");
  auto out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(errc::unsupported_protocol_version)) << out.error.message;
  EXPECT_NE(out.error.message.find("_pq_.pgshift_test"), std::string::npos) << out.error.message;
}

TEST_F(UpstreamTest, UnreachablePortFailsWithinTheTimeout) {
  auto p = scram_params();
  p.port = free_port();
  p.connect_timeout = 2s;
  auto out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_EQ(out.error.ec, error_code(asio::error::connection_refused)) << out.error.message;
  EXPECT_NE(out.error.message.find("could not connect to 127.0.0.1:"), std::string::npos);
  EXPECT_LT(out.elapsed, 2s);
}

TEST_F(UpstreamTest, UnresolvableHostFailsWithinTheTimeout) {
  auto p = scram_params();
  p.host = "pgshift-test.invalid";
  p.connect_timeout = 2s;
  auto out = connect(p);
  ASSERT_FALSE(out.conn);
  EXPECT_NE(out.error.message.find("pgshift-test.invalid"), std::string::npos);
  EXPECT_LT(out.elapsed, 3s);
}

// A listener that accepts at the TCP level (kernel backlog) but never reads or answers.
TEST_F(UpstreamTest, SilentServerTimesOutWithinConnectTimeout) {
  for (auto mode : {UpstreamTlsMode::disable, UpstreamTlsMode::require}) {
    asio::io_context io;
    tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    auto p = scram_params();
    p.port = silent.local_endpoint().port();
    p.connect_timeout = 300ms;
    if (mode != UpstreamTlsMode::disable) use_tls(p, mode, "");
    auto out = connect(p);
    ASSERT_FALSE(out.conn);
    EXPECT_EQ(out.error.ec, error_code(errc::timed_out)) << out.error.message;
    EXPECT_NE(out.error.message.find("timed out after 300 ms"), std::string::npos)
        << out.error.message;
    EXPECT_GE(out.elapsed, 290ms);
    EXPECT_LT(out.elapsed, 1500ms);
  }
}

class CancelTest : public UpstreamTest, public ::testing::WithParamInterface<UpstreamTlsMode> {};

TEST_P(CancelTest, CancelsARunningQuery) {
  auto p = scram_params();
  if (GetParam() != UpstreamTlsMode::disable) use_tls(p, GetParam(), cluster_->ca_file());
  run_io([&]() -> asio::awaitable<void> {
    ConnectError error;
    auto sleeper = co_await connect_upstream(p, error);
    EXPECT_TRUE(sleeper) << error.message;
    auto watcher = co_await connect_upstream(p, error);
    EXPECT_TRUE(watcher) << error.message;
    if (!sleeper || !watcher) co_return;

    wire::Bytes out;
    wire::query(out, "SELECT pg_sleep(30)");
    const error_code write_ec = co_await sleeper->stream.write_all(out);
    EXPECT_FALSE(write_ec) << write_ec.message();

    // Wait (with a deadline, by polling) until the server runs the query.
    const auto deadline = Clock::now() + 10s;
    const std::string poll =
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid = " +
        std::to_string(sleeper->backend_key.pid);
    bool running = false;
    while (!running && Clock::now() < deadline) {
      auto r = co_await simple_query(*watcher, poll, 5s);
      EXPECT_FALSE(r.ec) << r.ec.message();
      if (r.ec) co_return;
      running = r.first_column == std::vector<std::string>{"1"};
    }
    EXPECT_TRUE(running);

    const auto start = Clock::now();
    const error_code cancel_ec = co_await send_cancel(p, sleeper->backend_key);
    EXPECT_FALSE(cancel_ec) << cancel_ec.message();
    auto r = co_await simple_query(*sleeper, "", 10s, /*send=*/false);
    EXPECT_FALSE(r.ec) << r.ec.message();
    EXPECT_EQ(r.sqlstate, "57014");  // query_canceled
    EXPECT_EQ(r.status, 'I');
    EXPECT_LT(Clock::now() - start, 5s);
    sleeper->stream.close();
    watcher->stream.close();
  });
}

INSTANTIATE_TEST_SUITE_P(Tls, CancelTest,
                         ::testing::Values(UpstreamTlsMode::disable, UpstreamTlsMode::verify_full));

TEST_F(UpstreamTest, CancelToAnUnreachablePortFails) {
  auto p = scram_params();
  p.port = free_port();
  p.connect_timeout = 2s;
  auto ec = run_io([&]() { return send_cancel(p, wire::CancelKey{1, 2}); });
  EXPECT_EQ(ec, error_code(asio::error::connection_refused));
}

}  // namespace
}  // namespace pgshift::pool::test
