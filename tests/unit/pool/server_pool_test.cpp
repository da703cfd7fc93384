// Server connection pools (pool/server_pool.hpp, pool/pool_set.hpp) against real PostgreSQL 15
// servers: reuse, the size limit across two I/O threads, waiting, timeouts, hygiene on
// release, maintenance, dead connections, outages and reconnect backoff, reset.
//
// Every pool runs on a real io_context thread (IoThread); the test thread only orchestrates
// and asserts, and never touches a pool or connection directly. Each test uses its own
// application_name so that pg_stat_activity counts are the test's own.
#include "pool/server_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <future>
#include <set>
#include <thread>

#include "pool/errc.hpp"
#include "pool/pool_set.hpp"
#include "pool/server_pool_check.hpp"
#include "tests/support/support.hpp"

namespace pgshift::pool {
namespace {

namespace pt = pgshift::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr const char* kUser = "pooler";
constexpr const char* kPassword = "pooler-pw";

// `main` serves most tests; `flaky` is stopped and started by the outage tests, so that a
// failure there cannot leave the other tests without a server.
struct Servers {
  pt::PgCluster main{{.name = "pool-main"}};
  pt::PgCluster flaky{{.name = "pool-flaky"}};
  Servers() {
    main.create_role(kUser, kPassword);
    flaky.create_role(kUser, kPassword);
  }
};
const auto* const servers_env = pt::SharedEnvironment<Servers>::install();
Servers& servers() {
  return pt::SharedEnvironment<Servers>::get();
}

// One io_context run by its own thread, like one of pgshift's I/O threads.
class IoThread {
 public:
  IoThread() : work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  asio::any_io_executor executor() { return io_.get_executor(); }

  // Runs the coroutine `f()` there; `f` is kept alive until it finishes.
  template <class F>
  auto spawn(F f) {
    return asio::co_spawn(io_, std::move(f), asio::use_future);
  }
  // ... and waits for its result (at most a minute: a hang fails the test, not CI).
  template <class F>
  auto run(F f) {
    auto future = spawn(std::move(f));
    if (future.wait_for(60s) != std::future_status::ready) {
      ADD_FAILURE() << "coroutine did not finish within 60 s";
      std::abort();
    }
    return future.get();
  }
  // Runs a plain function there and returns its result.
  template <class F>
  auto call(F f) {
    // Wrapped: Asio would treat a bare packaged_task as a completion token.
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto future = task->get_future();
    asio::post(io_, [task] { (*task)(); });
    return future.get();
  }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;
};

ServerPoolOptions fast_options() {
  ServerPoolOptions o;
  o.maintenance_interval = 100ms;
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  o.check_timeout = 5s;
  o.close_timeout = 2s;
  return o;
}

config::Pool settings(int size, std::chrono::milliseconds wait = 10s) {
  config::Pool p;
  p.mode = config::PoolMode::transaction;
  p.size = size;
  p.query_wait_timeout = wait;
  return p;
}

std::shared_ptr<const UpstreamParams> params_for(const pt::PgCluster& cluster,
                                                 const std::string& application_name,
                                                 const std::string& password = kPassword) {
  auto p = std::make_shared<UpstreamParams>();
  p->host = "127.0.0.1";
  p->port = cluster.port();
  p->database = "postgres";
  p->credentials.user = kUser;
  p->credentials.password = password;
  p->connect_timeout = 3s;
  p->startup_params = {{"application_name", application_name}};
  return p;
}

int backends(const pt::PgCluster& cluster, const std::string& application_name) {
  return std::stoi(cluster
                       .exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                             application_name + "'")
                       .scalar());
}

bool backend_exists(const pt::PgCluster& cluster, int pid) {
  return cluster.exec("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid))
             .scalar() == "1";
}

// Pools on `n` I/O threads sharing one registry. The destructor closes every pool, waits
// until every server connection is closed, then destroys each PoolSet on its own thread.
class Harness {
 public:
  explicit Harness(int n = 1, ServerPoolOptions options = fast_options()) {
    for (int i = 0; i < n; ++i) {
      threads_.push_back(std::make_unique<IoThread>());
      sets_.push_back(PoolSet::create(threads_.back()->executor(), registry_, options));
    }
  }
  ~Harness() {
    for (std::size_t i = 0; i < sets_.size(); ++i) {
      threads_[i]->call([&, i] {
        sets_[i]->close();
        return 0;
      });
    }
    EXPECT_TRUE(pt::wait_until(
        [&] {
          for (const auto& s : registry_->stats()) {
            if (s.total != 0 || s.closing != 0) return false;
          }
          return true;
        },
        10s, "every pooled connection closed"));
    for (std::size_t i = 0; i < sets_.size(); ++i) {
      threads_[i]->call([&, i] {
        sets_[i].reset();
        return 0;
      });
    }
  }

  IoThread& io(int i = 0) { return *threads_[static_cast<std::size_t>(i)]; }
  PoolSet& set(int i = 0) { return *sets_[static_cast<std::size_t>(i)]; }
  // This thread's pool for the key (a raw pointer: the PoolSet owns it).
  ServerPool* pool(int i, const PoolKey& key, std::shared_ptr<const UpstreamParams> params,
                   const config::Pool& s) {
    return io(i).call([&] { return set(i).get(key, params, s).get(); });
  }
  PoolStats stats(const PoolKey& key) const { return registry_->find(key)->stats(); }

  PooledConnection acquire(int i, ServerPool* pool, AcquireError& error) {
    return io(i).run([pool, &error]() -> asio::awaitable<PooledConnection> {
      co_return co_await pool->acquire(error);
    });
  }
  std::future<PooledConnection> spawn_acquire(int i, ServerPool* pool, AcquireError& error) {
    return io(i).spawn([pool, &error]() -> asio::awaitable<PooledConnection> {
      co_return co_await pool->acquire(error);
    });
  }
  void release(int i, PooledConnection& conn, ReleaseState state) {
    io(i).call([&] {
      conn.release(state);
      return 0;
    });
  }
  CommandResult query(int i, PooledConnection& conn, const std::string& sql) {
    return io(i).run([&conn, sql]() -> asio::awaitable<CommandResult> {
      co_return co_await run_simple_command(*conn, sql, 10s);
    });
  }

 private:
  std::shared_ptr<PoolRegistry> registry_ = std::make_shared<PoolRegistry>();
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::vector<std::shared_ptr<PoolSet>> sets_;
};

PoolKey key_for(const std::string& route) {
  return {.route = route, .side = UpstreamSide::source, .database = "postgres", .user = kUser};
}

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

TEST(ServerPoolTest, IdleConnectionOnAnotherThreadIsGivenUpForAWaiter) {
  Harness h(2);
  const auto key = key_for("cross");
  const auto params = params_for(servers().main, "pool_cross");
  auto* a = h.pool(0, key, params, settings(1, 5s));
  auto* b = h.pool(1, key, params, settings(1, 5s));
  AcquireError error;
  auto conn = h.acquire(0, a, error);
  ASSERT_TRUE(conn) << error.message;
  h.release(0, conn, ReleaseState::clean);  // idle on thread 0
  EXPECT_EQ(h.stats(key).idle, 1);

  // Thread 1 is at the limit; thread 0 gives up its idle connection (rebalance_after).
  auto start = Clock::now();
  auto on_b = h.acquire(1, b, error);
  ASSERT_TRUE(on_b) << error.message;
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(h.stats(key).total, 1);

  // Released on thread 1 while thread 0 has a waiter: closed, and thread 0 connects.
  AcquireError a_error;
  auto waiting = h.spawn_acquire(0, a, a_error);
  ASSERT_TRUE(pt::wait_until([&] { return h.stats(key).waiting == 1; }, 10s, "a waiter"));
  start = Clock::now();
  h.release(1, on_b, ReleaseState::clean);
  auto on_a = waiting.get();
  ASSERT_TRUE(on_a) << a_error.message;
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_EQ(h.stats(key).wait_timeouts, 0);
  h.release(0, on_a, ReleaseState::clean);
  EXPECT_LE(h.stats(key).total, 1);
}

TEST(ServerPoolTest, AcquireDuringAnUpstreamRestartSucceedsAfterIt) {
  Harness h;
  auto& flaky = servers().flaky;
  const auto key = key_for("restart");
  auto* pool = h.pool(0, key, params_for(flaky, "pool_restart"), settings(2, 60s));
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
  ASSERT_TRUE(h.query(0, conn, "CREATE TEMP TABLE session_state (x int)").ok());
  ASSERT_TRUE(h.query(0, conn, "SET application_name = 'changed'").ok());
  ASSERT_TRUE(h.query(0, conn, "SELECT * FROM session_state").ok());
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
  EXPECT_EQ(h.query(0, conn, "SELECT * FROM session_state").sqlstate, "42P01");
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

TEST(PoolStatsTest, FormatsTextAndJson) {
  PoolStats s;
  s.route = "auth";
  s.side = "source";
  s.database = "auth_db";
  s.user = "app\"1";
  s.mode = "transaction";
  s.size = 20;
  s.total = 7;
  s.idle = 2;
  s.active = 5;
  s.total_wait_time = 1500us;
  const std::vector<PoolStats> pools{s};
  const auto text = format_pools_text(pools);
  EXPECT_NE(text.find("pool"), std::string::npos);
  EXPECT_NE(text.find("auth/source/auth_db/app\"1 | transaction"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  const auto json = to_json(std::span<const PoolStats>(pools));
  EXPECT_NE(json.find("\"user\":\"app\\\"1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"total\":7"), std::string::npos) << json;
  EXPECT_NE(json.find("\"total_wait_time_us\":1500"), std::string::npos) << json;
  EXPECT_EQ(json.front(), '[');
  EXPECT_EQ(json.back(), ']');
  const auto line = to_log_line(s);
  EXPECT_EQ(line.rfind("pool=auth/source/auth_db/app\"1 mode=transaction size=20", 0), 0u) << line;
}

}  // namespace
}  // namespace pgshift::pool
