#pragma once
// The state of the server connection pools, for logs and the admin API (a PgBouncer
// `SHOW POOLS`-like view). One PoolStats per pool key, summed over the I/O threads'
// per-thread pools by PoolShared::stats() / PoolRegistry::stats().
//
// What is counted is described in docs/pooling.md ("What is counted").
#include <atomic>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace pgshift::pool {

// A number that exactly one thread changes (load + store, no read-modify-write, so no locked
// instruction on the hot path) and any thread may read. Relaxed: readers want a recent value,
// not an ordering.
class OwnedCounter {
 public:
  void add(std::int64_t delta) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  }
  std::int64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

struct PoolStats {
  // Identity (PoolKey) and configuration.
  std::string route;
  std::string side;  // "source" | "target"
  std::string database;
  std::string user;
  std::string mode;  // "session" | "transaction"
  std::int64_t size = 0;
  std::int64_t reserve = 0;

  // Gauges, at the moment of the snapshot.
  std::int64_t idle = 0;        // open and unused, in the idle lists
  std::int64_t active = 0;      // handed out (includes health checks in progress)
  std::int64_t waiting = 0;     // acquires queued for a connection
  std::int64_t connecting = 0;  // connections being opened (for a client or for min_idle)
  std::int64_t closing = 0;     // Terminate sent, waiting for the server to hang up
  std::int64_t total = 0;       // slots taken, on every thread: what `size` limits

  // Counters since start.
  std::int64_t acquires = 0;                     // acquire() calls
  std::int64_t waits = 0;                        // acquires that had to queue
  std::int64_t connects = 0;                     // server connections opened
  std::int64_t handovers = 0;                    // idle ones handed to another I/O thread
  std::int64_t connect_failures = 0;             // failed attempts (each retry counts)
  std::int64_t wait_timeouts = 0;                // acquires that failed at query_wait_timeout
  std::int64_t closed = 0;                       // server connections closed, for any reason
  std::int64_t dead = 0;                         // found closed/unexpectedly readable while idle
  std::int64_t health_checks = 0;                // SELECT 1 before handing out a long-idle one
  std::int64_t health_check_failures = 0;        // ... that failed (connection discarded)
  std::int64_t resets = 0;                       // reset_for_reuse() calls (DISCARD ALL)
  std::int64_t reset_failures = 0;               // ... that failed (connection discarded)
  std::chrono::microseconds total_wait_time{0};  // summed over acquires not served at once

  // Adds `other`'s gauges and counters (not identity or configuration).
  PoolStats& operator+=(const PoolStats& other);
};

// One line of `key=value` pairs, for a periodic log line:
//   pool=auth/source/auth_db/app mode=transaction size=20 total=7 idle=2 active=5 waiting=0 ...
std::string to_log_line(const PoolStats& stats);

// A fixed-width table with a header, one row per pool, like PgBouncer's SHOW POOLS.
std::string format_pools_text(std::span<const PoolStats> pools);

// {"route": "...", "side": "...", ..., "total_wait_time_us": 123}: the identity strings, then
// every number in the order of to_log_line(). Names come from the configuration and from
// clients; Boost.JSON escapes them.
boost::json::object to_json_object(const PoolStats& stats);
// [{...}, {...}]
boost::json::array to_json_array(std::span<const PoolStats> pools);
// The same, serialized.
std::string to_json(const PoolStats& stats);
std::string to_json(std::span<const PoolStats> pools);
// The inverse of to_json_object(), for clients of the admin API: members that are missing
// or of the wrong type are left at their defaults (an older or newer server).
PoolStats from_json_object(const boost::json::object& object);

}  // namespace pgshift::pool
