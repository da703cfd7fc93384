#pragma once
// The server pools as operators see them (docs/pooling.md, "Seeing the pools"): a log line
// per pool every minute for the pools with activity, all of them once at shutdown, and the
// pool metrics, fed from pool::PoolRegistry when /metrics is scraped. GET /v1/pools and
// `pgshift ctl pools` show the same PoolStats (admin_pools_api.cpp, ctl.cpp).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "pool/pool_stats.hpp"

namespace pgshift::pool {
class PoolRegistry;
}

namespace pgshift::proxy {

namespace asio = boost::asio;

// How often the pools with activity are logged. A constant, documented in docs/pooling.md.
inline constexpr std::chrono::milliseconds kPoolLogInterval{60'000};

// Remembers every pool's counters between two log passes. Not thread-safe: one owner.
class PoolActivity {
 public:
  // The pools of `now` with activity since the previous call (the first call compares with
  // zero): a counter moved, or connections are in use, wanted, being opened or being closed
  // right now. A pool that sat idle (or empty) the whole time is left out.
  std::vector<pool::PoolStats> since_last(const std::vector<pool::PoolStats>& now);

 private:
  std::map<std::string, pool::PoolStats> last_;
};

// One info line per pool: {"msg":"pool stats","reason":R,"route":...,"side":...,
// "stats":"pool=auth/source/auth_db/app mode=transaction size=20 total=7 ..."}.
void log_pool_stats(std::span<const pool::PoolStats> pools, std::string_view reason);

// Logs the pools with activity every `interval`. start(), stop() and the log calls run on
// the executor's thread (io_context 0); stop() is idempotent and cancels the pending wait.
class PoolLogger : public std::enable_shared_from_this<PoolLogger> {
 public:
  PoolLogger(std::shared_ptr<const pool::PoolRegistry> registry, asio::any_io_executor executor,
             std::chrono::milliseconds interval = kPoolLogInterval);

  void start();
  void stop();
  // What the timer does: the pools with activity since the last pass, reason "interval".
  void log_active();
  // Every pool, whatever its activity (at shutdown).
  void log_all(std::string_view reason);

 private:
  void arm();

  std::shared_ptr<const pool::PoolRegistry> registry_;
  asio::steady_timer timer_;
  std::chrono::milliseconds interval_;
  PoolActivity activity_;
  bool stopped_ = false;
};

// Sets pgshift_server_connections{route,side,state} to the sums of `idle` and `active` over
// each route side's pools (0 for a side without pools), and advances the counter
// pgshift_server_connects_total{route,side,result} to the sums of `connects` (ok) and
// `connect_failures` (error), and pgshift_server_handovers_total{route,side} to the sums of
// `handovers`. `pools` is PoolRegistry::stats(): counters since start, which
// never go down (a pool that goes away leaves its counters to its key). Thread-safe.
void feed_pool_metrics(std::span<const pool::PoolStats> pools);

}  // namespace pgshift::proxy
