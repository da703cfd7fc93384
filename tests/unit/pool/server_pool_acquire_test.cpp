// Server connection pools (pool/server_pool.hpp, pool/pool_set.hpp) against real PostgreSQL 15
// servers, acquire and release: reuse, the size limit across two I/O threads, waiting,
// query_wait_timeout, cancelled waiters, the reserve, and closing the pool (hand-overs between
// threads: server_pool_handover_test.cpp). Fixture: server_pool_fixture.hpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>
#include <string>
#include <vector>

#include "pool/errc.hpp"
#include "server_pool_fixture.hpp"

namespace pgshift::pool {
namespace {

using namespace test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

TEST(ServerPoolTest, ReleasedConnectionIsReused) {
  Harness h;
  const auto key = key_for("reuse");
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_reuse"), settings(2));
  AcquireError error;
  auto first = h.acquire(0, pool, error);
  ASSERT_TRUE(first) << error.message;
  const int pid = first->backend_key.pid;
  EXPECT_TRUE(h.query(0, first, "SELECT 1").ok());
  h.release(0, first, ReleaseState::clean);
  EXPECT_FALSE(first);

  auto second = h.acquire(0, pool, error);
  ASSERT_TRUE(second) << error.message;
  EXPECT_EQ(second->backend_key.pid, pid);
  EXPECT_TRUE(h.query(0, second, "SELECT 1").ok());
  h.release(0, second, ReleaseState::clean);

  // The same without a coroutine.
  auto third = h.io().call([&] { return pool->try_acquire_now(); });
  ASSERT_TRUE(third);
  EXPECT_EQ(third->backend_key.pid, pid);
  h.release(0, third, ReleaseState::clean);

  EXPECT_EQ(backends(servers().main, "pool_reuse"), 1);
  const auto s = h.stats(key);
  EXPECT_EQ(s.connects, 1);
  EXPECT_EQ(s.acquires, 3);
  EXPECT_EQ(s.idle, 1);
  EXPECT_EQ(s.active, 0);
  EXPECT_EQ(s.total, 1);
}

TEST(ServerPoolTest, SizeIsHonouredAcrossTwoThreads) {
  Harness h(2);
  const auto key = key_for("size");
  const std::string app = "pool_size";
  constexpr int kSize = 3, kClientsPerThread = 8, kRounds = 12;
  ServerPool* pools[2];
  for (int t = 0; t < 2; ++t) {
    pools[t] = h.pool(t, key, params_for(servers().main, app), settings(kSize, 30s));
  }
  std::atomic<int> failures{0}, done{0}, max_total{0};
  std::vector<std::future<void>> clients;
  for (int t = 0; t < 2; ++t) {
    for (int c = 0; c < kClientsPerThread; ++c) {
      clients.push_back(h.io(t).spawn([&, pool = pools[t]]() -> asio::awaitable<void> {
        for (int round = 0; round < kRounds; ++round) {
          AcquireError error;
          auto conn = co_await pool->acquire(error);
          if (!conn) {
            ADD_FAILURE() << error.message;
            ++failures;
            continue;
          }
          int total = pool->shared().total();
          int seen = max_total.load();
          while (total > seen && !max_total.compare_exchange_weak(seen, total)) {
          }
          auto result = co_await run_simple_command(*conn, "SELECT pg_sleep(0.01)", 10s);
          if (!result.ok()) ++failures;
          conn.release(ReleaseState::clean);
        }
        ++done;
      }));
    }
  }
  // Sample the server side while the clients run.
  int max_backends = 0;
  const auto deadline = Clock::now() + 120s;
  while (done.load() < 2 * kClientsPerThread && Clock::now() < deadline) {
    max_backends = std::max(max_backends, backends(servers().main, app));
  }
  for (auto& f : clients) f.get();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(max_backends, kSize);
  EXPECT_GE(max_backends, 2) << "the clients should have used several connections at once";
  EXPECT_LE(max_total.load(), kSize);
  const auto s = h.stats(key);
  EXPECT_EQ(s.acquires, 2 * kClientsPerThread * kRounds);
  EXPECT_LE(s.total, kSize);
  EXPECT_GT(s.waits, 0);
  EXPECT_EQ(s.wait_timeouts, 0);
}

TEST(ServerPoolTest, WaiterGetsTheReleasedConnection) {
  Harness h;
  const auto key = key_for("waiter");
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_waiter"), settings(1));
  AcquireError error, waiter_error;
  auto held = h.acquire(0, pool, error);
  ASSERT_TRUE(held) << error.message;
  const int pid = held->backend_key.pid;
  auto waiting = h.spawn_acquire(0, pool, waiter_error);
  ASSERT_TRUE(pt::wait_until([&] { return h.stats(key).waiting == 1; }, 10s, "a waiter"));
  h.release(0, held, ReleaseState::clean);
  auto got = waiting.get();
  ASSERT_TRUE(got) << waiter_error.message;
  EXPECT_EQ(got->backend_key.pid, pid);
  EXPECT_EQ(h.stats(key).waits, 1);
  EXPECT_EQ(h.stats(key).connects, 1);
  h.release(0, got, ReleaseState::clean);
}

TEST(ServerPoolTest, QueryWaitTimeoutGivesAClearError) {
  Harness h;
  const auto key = key_for("wait_timeout");
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_wait_timeout"), settings(1, 300ms));
  AcquireError error;
  auto held = h.acquire(0, pool, error);
  ASSERT_TRUE(held) << error.message;
  const auto start = Clock::now();
  auto none = h.acquire(0, pool, error);
  const auto elapsed = Clock::now() - start;
  EXPECT_FALSE(none);
  EXPECT_EQ(error.ec, make_error_code(errc::wait_timeout));
  EXPECT_EQ(error.sqlstate, "53300");
  EXPECT_TRUE(error.timed_out);
  EXPECT_NE(error.message.find("query_wait_timeout (300 ms)"), std::string::npos) << error.message;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(h.stats(key).wait_timeouts, 1);
  EXPECT_EQ(h.stats(key).waiting, 0);
  h.release(0, held, ReleaseState::clean);
}

TEST(ServerPoolTest, CancelledWaiterLeavesThePoolConsistent) {
  Harness h;
  const auto key = key_for("cancel");
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_cancel"), settings(1));
  AcquireError error;
  auto held = h.acquire(0, pool, error);
  ASSERT_TRUE(held) << error.message;
  // The client goes away while waiting: the acquire is cancelled by a 200 ms timer.
  const bool timer_won = h.io().run([pool]() -> asio::awaitable<bool> {
    using namespace asio::experimental::awaitable_operators;
    AcquireError e;
    asio::steady_timer timer(co_await asio::this_coro::executor, 200ms);
    auto r = co_await (pool->acquire(e) || timer.async_wait(asio::use_awaitable));
    co_return r.index() == 1;
  });
  EXPECT_TRUE(timer_won);
  EXPECT_EQ(h.stats(key).waiting, 0);
  h.release(0, held, ReleaseState::clean);
  EXPECT_EQ(h.stats(key).idle, 1);  // not handed to the waiter that is gone
  auto again = h.acquire(0, pool, error);
  ASSERT_TRUE(again) << error.message;
  h.release(0, again, ReleaseState::clean);
}

TEST(ServerPoolTest, ReserveIsUsedAfterHalfTheWaitAndNotKept) {
  Harness h;
  const auto key = key_for("reserve");
  auto s = settings(1, 2000ms);
  s.reserve = 1;
  auto* pool = h.pool(0, key, params_for(servers().main, "pool_reserve"), s);
  AcquireError error;
  auto held = h.acquire(0, pool, error);
  ASSERT_TRUE(held) << error.message;
  const auto start = Clock::now();
  auto extra = h.acquire(0, pool, error);
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(extra) << error.message;
  EXPECT_GE(elapsed, 1000ms);
  EXPECT_LT(elapsed, 2000ms);
  EXPECT_EQ(h.stats(key).total, 2);
  h.release(0, extra, ReleaseState::clean);  // over size: closed, not kept idle
  EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).total == 1; }, 10s, "reserve closed"));
  EXPECT_EQ(h.stats(key).idle, 0);
  h.release(0, held, ReleaseState::clean);
  EXPECT_EQ(h.stats(key).idle, 1);
}

TEST(ServerPoolTest, ClosingThePoolFailsWaitersAndClosesConnections) {
  Harness h;
  const auto key = key_for("close");
  const std::string app = "pool_close";
  auto* pool = h.pool(0, key, params_for(servers().main, app), settings(1));
  AcquireError error, waiter_error;
  auto held = h.acquire(0, pool, error);
  ASSERT_TRUE(held) << error.message;
  auto waiting = h.spawn_acquire(0, pool, waiter_error);
  ASSERT_TRUE(pt::wait_until([&] { return h.stats(key).waiting == 1; }, 10s, "a waiter"));
  h.io().call([&] {
    h.set().close();
    return 0;
  });
  EXPECT_FALSE(waiting.get());
  EXPECT_EQ(waiter_error.ec, make_error_code(errc::pool_closed));
  EXPECT_EQ(waiter_error.sqlstate, "57P01");
  h.release(0, held, ReleaseState::clean);  // closed, not kept
  EXPECT_TRUE(pt::wait_until([&] { return backends(servers().main, app) == 0; }, 10s,
                             "connections closed"));
  EXPECT_FALSE(h.acquire(0, pool, error));
  EXPECT_EQ(error.ec, make_error_code(errc::pool_closed));
}

}  // namespace
}  // namespace pgshift::pool
