// Hand-over of server connections between the I/O threads' pools of one key
// (docs/threading.md): a connection released on one thread, or idle there, serves a client
// waiting on another thread without a new login; the server backend stays the same, and the
// pool's `connects` does not grow. Fixture: server_pool_fixture.hpp.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "server_pool_fixture.hpp"

namespace pgshift::pool {
namespace {

using namespace test;
using namespace std::chrono_literals;

// The server's own view of the backend the connection is attached to (a round trip on the
// connection's new thread proves the moved socket works there).
int backend_pid(Harness& h, int thread, PooledConnection& conn) {
  auto result = h.query(thread, conn, "SELECT pg_backend_pid()");
  EXPECT_TRUE(result.ok()) << result.message << result.ec.message();
  if (result.first_row.empty() || !result.first_row.front()) return -1;
  return std::stoi(*result.first_row.front());
}

TEST(ServerPoolHandoverTest, ReleasedConnectionGoesToAWaiterOnAnotherThread) {
  Harness h(2);
  const auto key = key_for("handover_push");
  const std::string app = "pool_handover_push";
  const auto params = params_for(servers().main, app);
  auto* a = h.pool(0, key, params, settings(1, 10s));
  auto* b = h.pool(1, key, params, settings(1, 10s));
  AcquireError error, b_error;
  auto on_a = h.acquire(0, a, error);
  ASSERT_TRUE(on_a) << error.message;
  const int pid = backend_pid(h, 0, on_a);

  auto waiting = h.spawn_acquire(1, b, b_error);
  ASSERT_TRUE(pt::wait_until([&] { return h.stats(key).waiting == 1; }, 10s, "a waiter"));
  h.release(0, on_a, ReleaseState::clean);  // nobody waits on thread 0: it goes to thread 1
  auto on_b = waiting.get();
  ASSERT_TRUE(on_b) << b_error.message;
  EXPECT_EQ(on_b->backend_key.pid, pid);
  EXPECT_EQ(backend_pid(h, 1, on_b), pid);
  h.release(1, on_b, ReleaseState::clean);

  const auto s = h.stats(key);
  EXPECT_EQ(s.connects, 1);
  EXPECT_EQ(s.closed, 0);
  EXPECT_EQ(s.handovers, 1);
  EXPECT_EQ(s.total, 1);
  EXPECT_EQ(s.idle, 1);
  EXPECT_EQ(backends(servers().main, app), 1);
}

TEST(ServerPoolHandoverTest, IdleConnectionOnAnotherThreadIsHandedToAWaiter) {
  Harness h(2);
  const auto key = key_for("handover_pull");
  const std::string app = "pool_handover_pull";
  const auto params = params_for(servers().main, app);
  auto* a = h.pool(0, key, params, settings(1, 10s));
  auto* b = h.pool(1, key, params, settings(1, 10s));
  AcquireError error;
  auto conn = h.acquire(0, a, error);
  ASSERT_TRUE(conn) << error.message;
  const int pid = conn->backend_key.pid;
  h.release(0, conn, ReleaseState::clean);  // idle on thread 0
  EXPECT_EQ(h.stats(key).idle, 1);

  // Thread 1 is at the limit: it asks thread 0, which hands its idle connection over.
  auto on_b = h.acquire(1, b, error);
  ASSERT_TRUE(on_b) << error.message;
  EXPECT_EQ(backend_pid(h, 1, on_b), pid);
  // ...and back, while thread 0 waits.
  AcquireError a_error;
  auto waiting = h.spawn_acquire(0, a, a_error);
  ASSERT_TRUE(pt::wait_until([&] { return h.stats(key).waiting == 1; }, 10s, "a waiter"));
  h.release(1, on_b, ReleaseState::clean);
  auto on_a = waiting.get();
  ASSERT_TRUE(on_a) << a_error.message;
  EXPECT_EQ(backend_pid(h, 0, on_a), pid);
  h.release(0, on_a, ReleaseState::clean);

  const auto s = h.stats(key);
  EXPECT_EQ(s.connects, 1);
  EXPECT_EQ(s.closed, 0);
  EXPECT_EQ(s.handovers, 2);
  EXPECT_EQ(s.wait_timeouts, 0);
  EXPECT_EQ(backends(servers().main, app), 1);
}

// A connection that was idle past health_check_after on its old thread is checked before
// the new thread's client gets it, as it would be on its own thread.
TEST(ServerPoolHandoverTest, LongIdleConnectionIsHealthCheckedAfterTheHandover) {
  auto options = fast_options();
  options.health_check_after = 0ms;  // every reuse is checked
  Harness h(2, options);
  const auto key = key_for("handover_health");
  const auto params = params_for(servers().main, "pool_handover_health");
  auto* a = h.pool(0, key, params, settings(1, 10s));
  auto* b = h.pool(1, key, params, settings(1, 10s));
  AcquireError error;
  auto conn = h.acquire(0, a, error);
  ASSERT_TRUE(conn) << error.message;
  const int pid = conn->backend_key.pid;
  h.release(0, conn, ReleaseState::clean);
  auto on_b = h.acquire(1, b, error);
  ASSERT_TRUE(on_b) << error.message;
  EXPECT_EQ(on_b->backend_key.pid, pid);
  const auto s = h.stats(key);
  EXPECT_EQ(s.handovers, 1);
  EXPECT_EQ(s.health_checks, 1);
  EXPECT_EQ(s.health_check_failures, 0);
  EXPECT_EQ(s.connects, 1);
  h.release(1, on_b, ReleaseState::clean);
}

// The load moves from one thread to the other: the second thread's clients get the first
// thread's connections (the same backends), and nothing is closed or opened.
TEST(ServerPoolHandoverTest, LoadMovingBetweenThreadsOpensNoConnection) {
  Harness h(2);
  const auto key = key_for("handover_load");
  const std::string app = "pool_handover_load";
  const auto params = params_for(servers().main, app);
  constexpr int kSize = 3, kClients = 6, kRounds = 10;
  ServerPool* pools[2];
  for (int t = 0; t < 2; ++t) pools[t] = h.pool(t, key, params, settings(kSize, 30s));
  std::mutex mu;
  std::set<int> pids[2];
  std::atomic<int> failures{0};
  const auto load_on = [&](int t) {
    std::vector<std::future<void>> clients;
    for (int c = 0; c < kClients; ++c) {
      clients.push_back(h.io(t).spawn([&, t, pool = pools[t]]() -> asio::awaitable<void> {
        for (int round = 0; round < kRounds; ++round) {
          AcquireError error;
          auto conn = co_await pool->acquire(error);
          if (!conn) {
            ADD_FAILURE() << error.message;
            ++failures;
            continue;
          }
          {
            std::lock_guard lock(mu);
            pids[t].insert(conn->backend_key.pid);
          }
          if (!(co_await run_simple_command(*conn, "SELECT pg_sleep(0.002)", 10s)).ok()) {
            ++failures;
          }
          conn.release(ReleaseState::clean);
        }
      }));
    }
    for (auto& f : clients) f.get();
  };
  load_on(1);
  const auto warm = h.stats(key);
  EXPECT_EQ(warm.connects, kSize);
  EXPECT_EQ(warm.idle, kSize);
  load_on(0);
  const auto s = h.stats(key);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(s.connects, kSize) << "a thread opened a connection instead of taking one over";
  EXPECT_EQ(s.closed, 0);
  EXPECT_GE(s.handovers, 1);
  EXPECT_EQ(s.total, kSize);
  EXPECT_EQ(backends(servers().main, app), kSize);
  for (int pid : pids[0]) EXPECT_TRUE(pids[1].contains(pid)) << "backend " << pid << " is new";
}

}  // namespace
}  // namespace pgshift::pool
