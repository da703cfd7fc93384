// Session mode over the server pool: a server is reused by the next client only after a clean
// end and DISCARD ALL, pool.size caps the servers, and a client that cannot get one within
// query_wait_timeout gets 53300 instead of hanging.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>

#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

struct Servers {
  PgCluster source{{.name = "source"}};
  Servers() {
    source.create_role("app", "app-pw");
    source.exec("CREATE TABLE ledger (id int PRIMARY KEY)");
    source.exec("GRANT ALL ON ledger TO app");
  }
};
const auto* const servers_env = SharedEnvironment<Servers>::install();
Servers& servers() {
  return SharedEnvironment<Servers>::get();
}

// One route with a pool of `size` and the given query_wait_timeout.
PgshiftProcess start_proxy(int size, int wait_ms) {
  ConfigSpec spec;
  RouteSpec route{.source = upstream_of(servers().source, "app", "postgres"), .pool_size = size};
  // Continues the route's pool: block (RouteSpec emits mode and size there).
  route.extra_yaml = "  query_wait_timeout_ms: " + std::to_string(wait_ms) + "\n";
  spec.routes.push_back(route);
  // One I/O thread: pools are per thread, so "the same server again" is only promised there.
  spec.extra_yaml = "threads: 1\n";
  return PgshiftProcess(
      {.config_yaml = spec.to_yaml(), .users = users_file_text({{"app", "app-pw"}})});
}

std::string server_pid(PgConnection& c) {
  return c.scalar("SELECT pg_backend_pid()");
}

TEST(SessionPoolTest, ServerIsReusedAfterDiscardAll) {
  auto proxy = start_proxy(1, 10000);
  std::string first_pid;
  {
    PgConnection a(proxy.conninfo("app", "app-pw", "postgres"));
    first_pid = server_pid(a);
    a.exec("SET work_mem = '7MB'");
    // (Not a temporary table: a server with a temporary namespace is closed instead of
    // reused, see fidelity_test FreshBackendTest.)
    a.exec("PREPARE scratch AS SELECT 1");
  }
  // Size 1: this client can only have the first server once it was reset and released.
  PgConnection b(proxy.conninfo("app", "app-pw", "postgres"));
  EXPECT_EQ(server_pid(b), first_pid) << proxy.log();
  EXPECT_EQ(b.scalar("SHOW work_mem"), "4MB");
  EXPECT_EQ(b.scalar("SELECT count(*) FROM pg_prepared_statements"), "0");
}

TEST(SessionPoolTest, ClientLeavingMidTransactionDoesNotLeakIt) {
  auto proxy = start_proxy(1, 10000);
  std::string first_pid;
  {
    PgConnection a(proxy.conninfo("app", "app-pw", "postgres"));
    first_pid = server_pid(a);
    a.exec("BEGIN");
    a.exec("INSERT INTO ledger VALUES (42)");
  }
  PgConnection b(proxy.conninfo("app", "app-pw", "postgres"));
  EXPECT_NE(server_pid(b), first_pid);  // the dirty server was closed, not reused
  EXPECT_EQ(b.scalar("SELECT count(*) FROM ledger WHERE id = 42"), "0");
  EXPECT_EQ(b.scalar("SELECT current_setting('transaction_isolation') IS NOT NULL"), "t");
}

TEST(SessionPoolTest, PoolSizeCapsServersAndWaitTimesOut) {
  auto proxy = start_proxy(1, 300);
  PgConnection a(proxy.conninfo("app", "app-pw", "postgres"));
  std::string err = connect_error(proxy.conninfo("app", "app-pw", "postgres"));
  EXPECT_THAT(err, HasSubstr("query_wait_timeout"));
  const std::string m = fetch_metrics(proxy);
  EXPECT_EQ(
      metric_value(m, "pgshift_pool_wait_timeouts_total", {{"route", "main"}, {"side", "source"}})
          .value_or(-1),
      1)
      << m;
  EXPECT_EQ(metric_value(m, "pgshift_client_connections").value_or(-1), 1) << m;
  EXPECT_EQ(metric_value(m, "pgshift_client_login_failures_total", {{"reason", "upstream_failed"}})
                .value_or(-1),
            1)
      << m;
  try {
    EXPECT_EQ(a.scalar("SELECT 1"), "1");  // the holder is unaffected
  } catch (const std::exception& e) {
    bool alive = proxy.process().running();
    ADD_FAILURE() << e.what() << "\nalive=" << alive << " signal="
                  << (proxy.process().exit_status() ? proxy.process().exit_status()->signal : -1)
                  << "\npgshift log:\n"
                  << proxy.log();
  }
  EXPECT_EQ(
      servers().source.exec("SELECT count(*) FROM pg_stat_activity WHERE usename = 'app'").scalar(),
      "1");
}

TEST(SessionPoolTest, WaitingClientGetsTheReleasedServer) {
  auto proxy = start_proxy(1, 20000);
  auto a = std::make_unique<PgConnection>(proxy.conninfo("app", "app-pw", "postgres"));
  std::string first_pid = server_pid(*a);
  auto waiter = std::async(std::launch::async, [&] {
    PgConnection b(proxy.conninfo("app", "app-pw", "postgres"));
    return server_pid(b);
  });
  // The second client is waiting in the pool (not yet served) while the first holds it.
  EXPECT_EQ(waiter.wait_for(200ms), std::future_status::timeout);
  a.reset();
  ASSERT_EQ(waiter.wait_for(15s), std::future_status::ready);
  EXPECT_EQ(waiter.get(), first_pid);
}

}  // namespace
}  // namespace pgshift::test
