// Health probes and the checker against loopback listeners (no PostgreSQL needed).
#include "proxy/control/health_checker.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <thread>

#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

using namespace std::chrono_literals;
using tcp = asio::ip::tcp;

std::string run_probe(const std::string& host, std::uint16_t port) {
  asio::io_context ioc;
  std::string result = "<not run>";
  asio::co_spawn(ioc, probe_tcp(host, port, 2000ms),
                 [&](std::exception_ptr e, std::string r) { result = e ? "exception" : r; });
  ioc.run_for(10s);
  return result;
}

// A port with nobody listening: bind, note the port, close.
std::uint16_t closed_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

TEST(HealthProbe, TcpConnects) {
  asio::io_context ioc;
  tcp::acceptor listener(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  EXPECT_EQ(run_probe("127.0.0.1", listener.local_endpoint().port()), "");
}

TEST(HealthProbe, TcpRefused) {
  const auto r = run_probe("127.0.0.1", closed_port());
  EXPECT_NE(r.find("could not connect to 127.0.0.1:"), std::string::npos) << r;
}

TEST(HealthProbe, TcpBadHost) {
  const auto r = run_probe("no-such-host.invalid", 5432);
  EXPECT_FALSE(r.empty());
}

TEST(HealthChecker, MarksUpstreamsAndServesReadyz) {
  asio::io_context upstream_ioc;
  tcp::acceptor listener(upstream_ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  test::AdminFixture f({.with_health = true, .source_port = listener.local_endpoint().port()});
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  test::HttpReply ready;
  while (std::chrono::steady_clock::now() < deadline) {
    ready = f.get("/readyz");
    if (ready.status == 200) break;
    std::this_thread::sleep_for(10ms);  // polling interval; the deadline bounds the wait
  }
  ASSERT_EQ(ready.status, 200u) << ready.body;
  EXPECT_EQ(ready.json().at("status").as_string(), "ready");
  auto health = f.runtime().health->route("auth");
  ASSERT_TRUE(health);
  EXPECT_TRUE(health->source.healthy());
  EXPECT_TRUE(health->target.healthy());
  const auto report = health->target.report();
  EXPECT_EQ(report.method, "tcp");
  EXPECT_TRUE(report.last_error.empty());
  auto routes = f.get("/v1/routes/auth");
  EXPECT_EQ(routes.json().at("target").at("health").at("status").as_string(), "healthy");

  // The upstream goes away: the next probes fail, and readiness follows.
  listener.close();
  while (std::chrono::steady_clock::now() < deadline && health->source.healthy()) {
    std::this_thread::sleep_for(10ms);  // polling interval; the deadline bounds the wait
  }
  EXPECT_FALSE(health->source.healthy());
  auto down = f.get("/readyz");
  EXPECT_EQ(down.status, 503u);
  EXPECT_NE(down.body.find("unreachable"), std::string::npos) << down.body;
  EXPECT_NE(health->target.report().last_error, "");
}

}  // namespace
}  // namespace pgshift::proxy
