#pragma once
// Fixture of server_pool_test (server_pool_acquire_test.cpp, server_pool_health_test.cpp):
// two real PostgreSQL 15 clusters started once per binary, pools on real io_context threads,
// and the pool settings and upstream parameters the tests use.
//
// Every pool runs on a real io_context thread (IoThread); the test thread only orchestrates
// and asserts, and never touches a pool or connection directly. Each test uses its own
// application_name so that pg_stat_activity counts are the test's own.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pool/pool_set.hpp"
#include "pool/server_pool.hpp"
#include "pool/server_pool_check.hpp"
#include "tests/support/support.hpp"

namespace pgshift::pool::test {

namespace pt = pgshift::test;

inline constexpr const char* kUser = "pooler";
inline constexpr const char* kPassword = "pooler-pw";

// `main` serves most tests (plain TCP, or TLS signed by `ca`); `flaky` is stopped and started
// by the outage tests, so that a failure there cannot leave the other tests without a server.
struct Servers {
  pt::CertAuthority ca;
  pt::PgCluster main{{.name = "pool-main", .tls = ca.server()}};
  pt::PgCluster flaky{{.name = "pool-flaky"}};
  Servers();
};
Servers& servers();  // installed once per binary (server_pool_fixture.cpp)

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
    if (future.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
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

// Short maintenance interval, backoff and timeouts, so that tests finish in seconds.
ServerPoolOptions fast_options();

// A transaction-mode pool of `size` with the given query_wait_timeout.
config::Pool settings(int size, std::chrono::milliseconds wait = std::chrono::seconds(10));

// `cluster` as the pool role, with its own application_name.
std::shared_ptr<const UpstreamParams> params_for(const pt::PgCluster& cluster,
                                                 const std::string& application_name,
                                                 const std::string& password = kPassword);

// Backends of `cluster` with that application_name, seen by the server.
int backends(const pt::PgCluster& cluster, const std::string& application_name);
bool backend_exists(const pt::PgCluster& cluster, int pid);

PoolKey key_for(const std::string& route);

// Pools on `n` I/O threads sharing one registry. The destructor closes every pool, waits
// until every server connection is closed, then destroys each PoolSet on its own thread.
class Harness {
 public:
  explicit Harness(int n = 1, ServerPoolOptions options = fast_options());
  ~Harness();

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
      co_return co_await run_simple_command(*conn, sql, std::chrono::seconds(10));
    });
  }

 private:
  std::shared_ptr<PoolRegistry> registry_ = std::make_shared<PoolRegistry>();
  std::vector<std::unique_ptr<IoThread>> threads_;
  std::vector<std::shared_ptr<PoolSet>> sets_;
};

}  // namespace pgshift::pool::test
