// Server connection pools (pool/server_pool.hpp, pool/pool_set.hpp) against real PostgreSQL 15
// servers, connection health: hygiene on release, reset for reuse, maintenance (idle timeout,
// lifetime, min_idle), dead and long-idle connections, outages and reconnect backoff, and
// authentication errors. Fixture: server_pool_fixture.hpp.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "server_pool_fixture.hpp"

namespace pgshift::pool {
namespace {

using namespace test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(ServerPoolTest, DirtyOrBusyReleaseClosesTheConnection) {
  Harness h;
  const auto key = key_for("dirty");
  const std::string app = "pool_dirty";
  auto* pool = h.pool(0, key, params_for(servers().main, app), settings(2));
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  const int first = conn->backend_key.pid;
  h.release(0, conn, ReleaseState::dirty);
  EXPECT_TRUE(pt::wait_until([&] { return !backend_exists(servers().main, first); }, 10s,
                             "the dirty connection's backend to exit"));

  // Declared clean but inside a transaction (ReadyForQuery 'T'): never reused.
  conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  const int second = conn->backend_key.pid;
  EXPECT_NE(second, first);
  EXPECT_EQ(h.query(0, conn, "BEGIN").status, 'T');
  h.release(0, conn, ReleaseState::clean);
  EXPECT_TRUE(pt::wait_until([&] { return !backend_exists(servers().main, second); }, 10s,
                             "the in-transaction connection's backend to exit"));
  EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).total == 0; }, 10s, "slots freed"));
  EXPECT_EQ(h.stats(key).closed, 2);
  EXPECT_EQ(h.stats(key).idle, 0);
}

TEST(ServerPoolTest, ResetForReuseDiscardsSessionState) {
  Harness h;
  const auto key = key_for("reset");
  auto s = settings(1);
  s.mode = config::PoolMode::session;
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_reset"), s);
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  const int pid = conn->backend_key.pid;
  // (Not a temporary table: a server with a temporary namespace is closed instead, below.)
  ASSERT_TRUE(h.query(0, conn, "PREPARE session_state AS SELECT 1").ok());
  ASSERT_TRUE(h.query(0, conn, "SET application_name = 'changed'").ok());
  ASSERT_TRUE(h.query(0, conn, "EXECUTE session_state").ok());
  ASSERT_EQ(h.query(0, conn, "BEGIN").status, 'T');  // the client left mid-transaction

  auto reset = h.io().run(
      [&]() -> asio::awaitable<error_code> { co_return co_await pool->reset_for_reuse(conn); });
  EXPECT_FALSE(reset) << reset.message();
  ASSERT_TRUE(conn);
  EXPECT_EQ(conn->txn_status, 'I');
  h.release(0, conn, ReleaseState::clean);

  conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  EXPECT_EQ(conn->backend_key.pid, pid);
  EXPECT_EQ(h.query(0, conn, "EXECUTE session_state").sqlstate, "26000");
  // DISCARD ALL reset application_name and the server reported it (ParameterStatus).
  std::string app;
  for (const auto& [name, value] : conn->parameters) {
    if (name == "application_name") app = value;
  }
  EXPECT_EQ(app, "pool_reset");
  h.release(0, conn, ReleaseState::clean);
  EXPECT_EQ(h.stats(key).resets, 1);
  EXPECT_EQ(h.stats(key).reset_failures, 0);
}

// A backend keeps its temporary namespace for life and DISCARD ALL cannot undo that (issue
// 14.4): reset_for_reuse closes such a server instead (the handle comes back empty).
TEST(ServerPoolTest, ResetForReuseClosesAServerWithATemporaryNamespace) {
  Harness h;
  const auto key = key_for("reset_temp");
  auto s = settings(1);
  s.mode = config::PoolMode::session;
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_reset_temp"), s);
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  const int pid = conn->backend_key.pid;
  ASSERT_TRUE(h.query(0, conn, "CREATE TEMP TABLE session_state (x int)").ok());
  auto reset = h.io().run(
      [&]() -> asio::awaitable<error_code> { co_return co_await pool->reset_for_reuse(conn); });
  EXPECT_FALSE(reset) << reset.message();
  EXPECT_FALSE(conn) << "a server with a temporary namespace was kept";
  conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  EXPECT_NE(conn->backend_key.pid, pid);
  h.release(0, conn, ReleaseState::clean);
}

TEST(ServerPoolTest, MaintenanceClosesIdleConnectionsPastIdleTimeout) {
  Harness h;
  const auto key = key_for("idle_timeout");
  const std::string app = "pool_idle_timeout";
  auto s = settings(2);
  s.server_idle_timeout = 300ms;
  auto* pool = h.pool(0, key, params_for(servers().main, app), s);
  h.io().call([&] {
    h.set().start();
    return 0;
  });
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  h.release(0, conn, ReleaseState::clean);
  EXPECT_EQ(backends(servers().main, app), 1);
  EXPECT_TRUE(pt::wait_until([&] { return backends(servers().main, app) == 0; }, 10s,
                             "the idle connection to be closed"));
  EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).closed == 1; }, 10s, "close counted"));
  EXPECT_EQ(h.stats(key).idle, 0);
}

TEST(ServerPoolTest, MaintenanceEnforcesLifetimeAndMinIdle) {
  Harness h;
  const auto key = key_for("lifetime");
  const std::string app = "pool_lifetime";
  auto s = settings(3);
  s.min_idle = 2;
  s.server_lifetime = 500ms;
  s.server_idle_timeout = 0ms;
  h.pool(0, key, params_for(servers().main, app), s);
  auto pids = [&] {
    std::set<std::string> out;
    auto r = servers().main.exec("SELECT pid FROM pg_stat_activity WHERE application_name = '" +
                                 app + "'");
    for (const auto& row : r.rows) out.insert(*row[0]);
    return out;
  };
  h.io().call([&] {
    h.set().start();
    return 0;
  });
  std::set<std::string> first;
  ASSERT_TRUE(pt::wait_until(
      [&] {
        first = pids();
        return first.size() == 2;
      },
      10s, "min_idle connections opened"));
  // Past server_lifetime they are replaced by new ones: never more than min_idle idle.
  ASSERT_TRUE(pt::wait_until(
      [&] {
        auto now = pids();
        EXPECT_LE(now.size(), 3u);
        for (const auto& pid : now) {
          if (first.contains(pid)) return false;
        }
        return now.size() == 2;
      },
      10s, "connections past server_lifetime replaced"));
  // The backends left pg_stat_activity just before they hung up on us.
  EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).closed >= 2; }, 10s, "closes counted"));
  EXPECT_GE(h.stats(key).connects, 4);
}

TEST(ServerPoolTest, TerminatedIdleConnectionIsDetectedAtAcquire) {
  Harness h;  // no maintenance: the acquire itself must notice
  const auto key = key_for("dead");
  const std::string app = "pool_dead";
  auto* pool = h.pool(0, key, params_for(servers().main, app), settings(2));
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  const int pid = conn->backend_key.pid;
  h.release(0, conn, ReleaseState::clean);
  servers().main.exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  ASSERT_TRUE(pt::wait_until([&] { return !backend_exists(servers().main, pid); }, 10s,
                             "the terminated backend to exit"));
  conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  EXPECT_NE(conn->backend_key.pid, pid);
  EXPECT_TRUE(h.query(0, conn, "SELECT 1").ok());
  h.release(0, conn, ReleaseState::clean);
  EXPECT_EQ(h.stats(key).dead, 1);
  EXPECT_EQ(h.stats(key).connects, 2);
}

// The idle watch: a server that goes away while its connection is idle in the pool is dropped
// then, with no acquire and no maintenance pass; the hot path (try_acquire_now) never sees it.
TEST(ServerPoolTest, TerminatedIdleConnectionIsDroppedWhileIdle) {
  Harness h;  // no maintenance
  const auto key = key_for("watched");
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_watched"), settings(2));
  AcquireError error;
  auto first = h.acquire(0, pool, error);
  ASSERT_TRUE(first) << error.message;
  auto second = h.acquire(0, pool, error);
  ASSERT_TRUE(second) << error.message;
  const int dead_pid = first->backend_key.pid;
  const int live_pid = second->backend_key.pid;
  h.release(0, first, ReleaseState::clean);
  h.release(0, second, ReleaseState::clean);
  servers().main.exec("SELECT pg_terminate_backend(" + std::to_string(dead_pid) + ")");
  EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).dead == 1; }, 10s,
                             "the idle watch to drop the terminated connection"));
  EXPECT_EQ(h.stats(key).idle, 1);
  // Handed out twice by the hot path: the watch is cancelled each time, and re-armed at
  // each release, and the connection reads and writes normally in between.
  for (int i = 0; i < 2; ++i) {
    auto conn = h.io(0).call([&] { return pool->try_acquire_now(); });
    ASSERT_TRUE(conn);
    EXPECT_EQ(conn->backend_key.pid, live_pid);
    EXPECT_TRUE(h.query(0, conn, "SELECT 1").ok());
    h.release(0, conn, ReleaseState::clean);
  }
  EXPECT_EQ(h.stats(key).dead, 1);
  EXPECT_EQ(h.stats(key).connects, 2);
}

TEST(ServerPoolTest, LongIdleConnectionIsHealthCheckedBeforeUse) {
  auto options = fast_options();
  options.health_check_after = 0ms;  // every reuse is checked
  Harness h(1, options);
  const auto key = key_for("health");
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_health"), settings(1));
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  h.release(0, conn, ReleaseState::clean);
  EXPECT_EQ(h.stats(key).health_checks, 0);  // a new connection needs no check
  conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  EXPECT_EQ(h.stats(key).health_checks, 1);
  EXPECT_EQ(h.stats(key).health_check_failures, 0);
  EXPECT_EQ(conn->txn_status, 'I');
  EXPECT_TRUE(h.query(0, conn, "SELECT 1").ok());
  h.release(0, conn, ReleaseState::clean);
}

TEST(ServerPoolTest, AcquireDuringAnUpstreamRestartSucceedsAfterIt) {
  Harness h;
  auto& flaky = servers().flaky;
  const auto key = key_for("restart");
  // Retries last at most connect_timeout: long enough here for a stop and start.
  auto params = std::make_shared<UpstreamParams>(*params_for(flaky, "pool_restart"));
  params->connect_timeout = 30s;
  auto* pool = h.pool(0, key, params, settings(2, 60s));
  AcquireError error;
  auto conn = h.acquire(0, pool, error);
  ASSERT_TRUE(conn) << error.message;
  const int pid = conn->backend_key.pid;
  h.release(0, conn, ReleaseState::clean);  // idle, and about to die with the server

  flaky.stop();
  const auto start = Clock::now();
  auto pending = h.spawn_acquire(0, pool, error);
  // The acquire is retrying against the stopped server...
  EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).connect_failures >= 2; }, 20s,
                             "failed connect attempts during the outage"));
  flaky.start();
  // ... and succeeds once it is back, well within query_wait_timeout.
  ASSERT_EQ(pending.wait_for(30s), std::future_status::ready);
  conn = pending.get();
  ASSERT_TRUE(conn) << error.message;
  EXPECT_NE(conn->backend_key.pid, pid);
  EXPECT_LT(Clock::now() - start, 60s);
  EXPECT_TRUE(h.query(0, conn, "SELECT 1").ok());
  h.release(0, conn, ReleaseState::clean);
  EXPECT_EQ(h.stats(key).dead, 1);
}

TEST(ServerPoolTest, UpstreamDownPastTheDeadlineGivesAClearError) {
  Harness h;
  auto& flaky = servers().flaky;
  const auto key = key_for("down");
  auto* pool = h.pool(0, key, params_for(flaky, "pool_down"), settings(2, 1500ms));
  flaky.stop();
  AcquireError error;
  const auto start = Clock::now();
  auto conn = h.acquire(0, pool, error);
  const auto elapsed = Clock::now() - start;
  flaky.start();
  EXPECT_FALSE(conn);
  EXPECT_TRUE(error.timed_out);
  EXPECT_FALSE(error.from_server);
  EXPECT_EQ(error.sqlstate, "08006");
  EXPECT_EQ(error.ec, asio::error::connection_refused) << error.ec.message();
  const std::string where =
      "could not connect to upstream 127.0.0.1:" + std::to_string(flaky.port());
  EXPECT_EQ(error.message.rfind(where, 0), 0u) << error.message;
  EXPECT_NE(error.message.find("query_wait_timeout of 1500 ms elapsed"), std::string::npos)
      << error.message;
  EXPECT_GE(elapsed, 1500ms);
  EXPECT_LT(elapsed, 5s);
  EXPECT_GE(h.stats(key).connect_failures, 3);  // retried with backoff meanwhile
  EXPECT_EQ(h.stats(key).wait_timeouts, 1);
  EXPECT_EQ(h.stats(key).total, 0);
}

// Issue 16.2: with the upstream down, retries last about connect_timeout (not
// query_wait_timeout), and a client queued behind the one connecting gets the same error at
// once instead of a wait of its own. A split read's acquire (retry_connect false) tries once.
TEST(ServerPoolTest, UpstreamDownFailsWithinConnectTimeoutAndFailsTheQueue) {
  Harness h;
  auto& flaky = servers().flaky;
  const auto key = key_for("down_fast");
  auto params = std::make_shared<UpstreamParams>(*params_for(flaky, "pool_down_fast"));
  params->connect_timeout = 1s;
  auto* pool = h.pool(0, key, params, settings(1, 60s));
  flaky.stop();
  AcquireError first_error, queued_error;
  auto first = h.spawn_acquire(0, pool, first_error);
  ASSERT_TRUE(pt::wait_until([&] { return h.stats(key).connect_failures >= 1; }, 10s,
                             "a failed connect attempt"));
  auto queued = h.spawn_acquire(0, pool, queued_error);
  ASSERT_EQ(first.wait_for(20s), std::future_status::ready) << "retried past connect_timeout";
  ASSERT_EQ(queued.wait_for(20s), std::future_status::ready) << "the queued acquire still waits";
  EXPECT_FALSE(first.get());
  EXPECT_FALSE(queued.get());
  for (const AcquireError* e : {&first_error, &queued_error}) {
    EXPECT_FALSE(e->timed_out) << e->message;
    EXPECT_EQ(e->sqlstate, "08006") << e->message;
    EXPECT_NE(e->message.find("within connect_timeout of 1000 ms"), std::string::npos)
        << e->message;
  }
  const auto failures = h.stats(key).connect_failures;
  EXPECT_GE(failures, 2);  // retried with backoff within the budget

  AcquireError once_error;
  PooledConnection once = h.io(0).run([pool, &once_error]() -> asio::awaitable<PooledConnection> {
    const AcquireOptions no_retry{.retry_connect = false};
    co_return co_await pool->acquire(once_error, no_retry);
  });
  flaky.start();
  EXPECT_FALSE(once);
  EXPECT_EQ(once_error.sqlstate, "08006") << once_error.message;
  EXPECT_EQ(h.stats(key).connect_failures, failures + 1) << "one attempt, no retry";
}

TEST(ServerPoolTest, AuthenticationErrorIsNotRetried) {
  Harness h;
  const auto key = key_for("auth");
  auto* pool =
      h.pool(0, key, params_for(servers().main, "pool_auth", "wrong-password"), settings(2, 20s));
  AcquireError error;
  const auto start = Clock::now();
  auto conn = h.acquire(0, pool, error);
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_FALSE(conn);
  EXPECT_TRUE(error.from_server);
  EXPECT_FALSE(error.timed_out);
  EXPECT_EQ(error.sqlstate, "28P01");
  EXPECT_NE(error.message.find("password authentication failed"), std::string::npos)
      << error.message;
  EXPECT_EQ(h.stats(key).connect_failures, 1);
  EXPECT_EQ(h.stats(key).total, 0);
}

}  // namespace
}  // namespace pgshift::pool
