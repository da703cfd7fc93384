#pragma once
// Background health checks of every route's upstreams (issue 4 item 7, DESIGN.md §4): the
// target gates the read split (an unhealthy target sends split reads back to the source)
// and the source decides /readyz. Every `interval` each upstream is probed: a full login
// with the route's fixed credentials when it has them (proves DNS, TCP, TLS, auth and that
// the database exists), else a plain TCP connect (passthrough routes have no credentials
// of their own). Probes of one round run concurrently; a probe still running from the last
// round is not started again.
//
// Thread-safety: the checker runs on one executor (io_context 0). UpstreamHealth is read
// from any thread: healthy() is one atomic load, report() takes a small lock. Sessions
// should call route() once (it takes a lock) and keep the shared_ptr.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/runtime/runtime.hpp"
#include "routing/side.hpp"

namespace pgshift::proxy {

class UpstreamHealth {
 public:
  struct Report {
    bool checked = false;  // false until the first probe finished
    bool healthy = false;
    std::string address;             // host:port of the last probe
    std::string method;              // "login" or "tcp"
    std::string last_error;          // empty when healthy
    std::int64_t last_check_ms = 0;  // unix ms of the last probe
    std::int64_t since_ms = 0;       // unix ms of the last change of `healthy`
  };

  // Unknown (never checked) counts as unhealthy: split reads stay on the source until the
  // target has been seen working.
  bool healthy() const { return healthy_.load(std::memory_order_acquire); }
  Report report() const;

  // For the checker. Returns true when `healthy` changed (including the first result).
  bool record(bool ok, std::string address, std::string method, std::string error,
              std::int64_t now_ms);

  bool in_flight = false;  // checker executor only

 private:
  std::atomic<bool> healthy_{false};
  mutable std::mutex mu_;
  Report report_;
};

struct RouteHealth {
  explicit RouteHealth(std::string n) : name(std::move(n)) {}
  const std::string name;
  UpstreamHealth source;
  UpstreamHealth target;  // never checked (so never healthy) for a route without a target
  UpstreamHealth& side(routing::Side s) { return s == routing::Side::source ? source : target; }
  const UpstreamHealth& side(routing::Side s) const {
    return s == routing::Side::source ? source : target;
  }
};
using RouteHealthPtr = std::shared_ptr<const RouteHealth>;

class HealthChecker : public std::enable_shared_from_this<HealthChecker> {
 public:
  struct Options {
    std::chrono::milliseconds interval{2000};
  };

  HealthChecker(Runtime& runtime, asio::any_io_executor executor, Options options);
  HealthChecker(Runtime& runtime, asio::any_io_executor executor)
      : HealthChecker(runtime, std::move(executor), Options{}) {}

  // Spawns the loop on the executor; the first round starts at once.
  void start();
  // Thread-safe. Running probes finish (bounded by their connect timeout) and are dropped.
  void stop();

  // Null for a route the checker has not seen (unknown, or added by a reload moments ago).
  RouteHealthPtr route(std::string_view name) const;
  std::vector<RouteHealthPtr> routes() const;

 private:
  asio::awaitable<void> loop();
  void start_round(const SnapshotPtr& snap);

  Runtime& runtime_;
  asio::any_io_executor executor_;
  Options options_;
  asio::steady_timer timer_;
  std::atomic<bool> stopped_{false};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<RouteHealth>, std::less<>> routes_;
};

// Probes, exposed for tests. Each returns an empty string on success, else why it failed.
// Logs in with `params` and says goodbye (Terminate) so the server logs no error.
asio::awaitable<std::string> probe_login(const pool::UpstreamParams& params);
// Resolves and connects, then closes without sending a byte (PostgreSQL 13+ logs nothing).
asio::awaitable<std::string> probe_tcp(const std::string& host, std::uint16_t port,
                                       std::chrono::milliseconds timeout);

}  // namespace pgshift::proxy
