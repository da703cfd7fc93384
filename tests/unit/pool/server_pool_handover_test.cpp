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

// Two I/O threads with a pool of size 1 each for one key: the smallest case where a thread
// needs the other thread's connection.
struct TwoThreads {
  explicit TwoThreads(const std::string& name, ServerPoolOptions options = fast_options())
      : h(2, options), key(key_for(name)), app("pool_" + name) {
    const auto params = params_for(servers().main, app);
    for (int t = 0; t < 2; ++t) pool[t] = h.pool(t, key, params, settings(1, 10s));
  }
  PooledConnection acquire(int t) {
    AcquireError error;
    auto conn = h.acquire(t, pool[t], error);
    EXPECT_TRUE(conn) << error.message;
    return conn;
  }
  // A client of thread `to` waits; `conn` is released on thread `from`; what the client got.
  PooledConnection released_to_waiter(int from, PooledConnection& conn, int to) {
    AcquireError error;
    auto waiting = h.spawn_acquire(to, pool[to], error);
    EXPECT_TRUE(pt::wait_until([&] { return h.stats(key).waiting == 1; }, 10s, "a waiter"));
    h.release(from, conn, ReleaseState::clean);
    auto got = waiting.get();
    EXPECT_TRUE(got) << error.message;
    return got;
  }

  Harness h;
  PoolKey key;
  std::string app;
  ServerPool* pool[2] = {nullptr, nullptr};
};

TEST(ServerPoolHandoverTest, ReleasedConnectionGoesToAWaiterOnAnotherThread) {
  TwoThreads t("handover_push");
  auto on_a = t.acquire(0);
  ASSERT_TRUE(on_a);
  const int pid = backend_pid(t.h, 0, on_a);
  // Nobody waits on thread 0: the connection goes to thread 1's client.
  auto on_b = t.released_to_waiter(0, on_a, 1);
  ASSERT_TRUE(on_b);
  EXPECT_EQ(on_b->backend_key.pid, pid);
  EXPECT_EQ(backend_pid(t.h, 1, on_b), pid);
  t.h.release(1, on_b, ReleaseState::clean);

  const auto s = t.h.stats(t.key);
  EXPECT_EQ(s.connects, 1);
  EXPECT_EQ(s.closed, 0);
  EXPECT_EQ(s.handovers, 1);
  EXPECT_EQ(s.total, 1);
  EXPECT_EQ(s.idle, 1);
  EXPECT_EQ(backends(servers().main, t.app), 1);
}

TEST(ServerPoolHandoverTest, IdleConnectionOnAnotherThreadIsHandedToAWaiter) {
  TwoThreads t("handover_pull");
  auto conn = t.acquire(0);
  ASSERT_TRUE(conn);
  const int pid = conn->backend_key.pid;
  t.h.release(0, conn, ReleaseState::clean);  // idle on thread 0
  EXPECT_EQ(t.h.stats(t.key).idle, 1);

  // Thread 1 is at the limit: it asks thread 0, which hands its idle connection over.
  auto on_b = t.acquire(1);
  ASSERT_TRUE(on_b);
  EXPECT_EQ(backend_pid(t.h, 1, on_b), pid);
  // ...and back, while thread 0 waits.
  auto on_a = t.released_to_waiter(1, on_b, 0);
  ASSERT_TRUE(on_a);
  EXPECT_EQ(backend_pid(t.h, 0, on_a), pid);
  t.h.release(0, on_a, ReleaseState::clean);

  const auto s = t.h.stats(t.key);
  EXPECT_EQ(s.connects, 1);
  EXPECT_EQ(s.closed, 0);
  EXPECT_EQ(s.handovers, 2);
  EXPECT_EQ(s.wait_timeouts, 0);
  EXPECT_EQ(backends(servers().main, t.app), 1);
}

// A connection that was idle past health_check_after on its old thread is checked before
// the new thread's client gets it, as it would be on its own thread.
TEST(ServerPoolHandoverTest, LongIdleConnectionIsHealthCheckedAfterTheHandover) {
  auto options = fast_options();
  options.health_check_after = 0ms;  // every reuse is checked
  TwoThreads t("handover_health", options);
  auto conn = t.acquire(0);
  ASSERT_TRUE(conn);
  const int pid = conn->backend_key.pid;
  t.h.release(0, conn, ReleaseState::clean);
  auto on_b = t.acquire(1);
  ASSERT_TRUE(on_b);
  EXPECT_EQ(on_b->backend_key.pid, pid);
  const auto s = t.h.stats(t.key);
  EXPECT_EQ(s.handovers, 1);
  EXPECT_EQ(s.health_checks, 1);
  EXPECT_EQ(s.health_check_failures, 0);
  EXPECT_EQ(s.connects, 1);
  t.h.release(1, on_b, ReleaseState::clean);
}

// A TLS connection moves with its OpenSSL state: the new thread's client talks to the same
// backend over the same TLS session.
TEST(ServerPoolHandoverTest, TlsConnectionIsHandedOverWithItsSession) {
  Harness h(2);
  const auto key = key_for("handover_tls");
  auto tls_params = std::make_shared<UpstreamParams>(*params_for(servers().main, "pool_tls"));
  tls_params->tls_mode = config::UpstreamTlsMode::verify_full;
  tls_params->tls_context = make_upstream_tls_context(
      {config::UpstreamTlsMode::verify_full, servers().ca.ca_cert().string(), ""});
  ServerPool* pool[2];
  for (int t = 0; t < 2; ++t) pool[t] = h.pool(t, key, tls_params, settings(1, 10s));
  AcquireError error;
  auto on_a = h.acquire(0, pool[0], error);
  ASSERT_TRUE(on_a) << error.message;
  ASSERT_TRUE(on_a->stream.is_tls());
  const int pid = backend_pid(h, 0, on_a);
  h.release(0, on_a, ReleaseState::clean);   // idle on thread 0
  auto on_b = h.acquire(1, pool[1], error);  // asks thread 0 for it
  ASSERT_TRUE(on_b) << error.message;
  EXPECT_TRUE(on_b->stream.is_tls());
  EXPECT_EQ(backend_pid(h, 1, on_b), pid);
  auto ssl = h.query(1, on_b, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  ASSERT_TRUE(ssl.ok()) << ssl.message;
  ASSERT_FALSE(ssl.first_row.empty());
  EXPECT_EQ(ssl.first_row.front().value_or(""), "t");
  h.release(1, on_b, ReleaseState::clean);
  const auto s = h.stats(key);
  EXPECT_EQ(s.connects, 1);
  EXPECT_EQ(s.closed, 0);
  EXPECT_EQ(s.handovers, 1);
  EXPECT_EQ(s.dead, 0);
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
