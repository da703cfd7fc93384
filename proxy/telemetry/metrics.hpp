#pragma once
// Every metric of the pgshift process, declared in this one place (docs/metrics.md lists
// them). Names follow `pgshift_<component>_<thing>[_total|_seconds]`, values are in base
// units (seconds, ratios), and labels only take bounded values: route names from the config,
// the enums below, HTTP endpoint templates. Never a user name, a routing key or SQL text.
//
// Usage: metrics() is a process-wide singleton. The accessors return the child series for
// one label set; they go through prometheus::Family::Add, which takes a lock and hashes the
// labels, so hot paths must resolve children once and keep the reference: a session calls
// metrics().route(name) once after login and uses the RouteMetrics it gets for every query.
// The references stay valid for the life of the process (series are never removed).
//
// Thread-safety: everything here may be called from any thread.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "routing/classifier.hpp"
#include "routing/side.hpp"

namespace pgshift::proxy {

using routing::Side;

// What a statement does, as far as routing is concerned.
enum class QueryClass : std::uint8_t { read, write, other };
inline constexpr std::size_t kQueryClassCount = 3;

// Why a client could not log in.
enum class LoginFailure : std::uint8_t {
  invalid_startup,   // malformed startup packet
  tls_required,      // plaintext client while listen.tls.mode is require
  tls_handshake,     // client TLS handshake failed
  auth_failed,       // wrong password or unknown user
  unknown_database,  // no route for the database (3D000)
  upstream_failed,   // the authoritative upstream refused or was unreachable
  timeout,           // login did not finish in time
  shutting_down,     // the proxy is draining
  too_many_clients,  // the route is at pool.max_client_connections (53300)
  hba_rejected,      // client_auth.hba_file: no matching rule, or a reject rule (28000)
  throttled,         // too many failed logins from the address or for the user (53300)
};

// Why a read went where it went (DESIGN.md §4).
enum class SplitDecision : std::uint8_t {
  target,         // split read, bucket below the percent: non-authoritative side
  source,         // split read, bucket at or above the percent: authoritative side
  ryw_hold,       // the key wrote recently: kept on the authoritative side
  fallback,       // would go to the target, but the target is unhealthy
  authoritative,  // not a split candidate (write, plain BEGIN block...): authoritative side
};
inline constexpr std::size_t kSplitDecisionCount = 5;

enum class FallbackReason : std::uint8_t {
  target_unhealthy,  // the health checker says the target is down
  target_connect,    // connecting to the target failed for this read
  target_lagging,    // the target is behind past the configured bound
};

// Errors worth counting that are not covered by a more specific metric. Only values that
// something increments (docs/metrics.md lists them; client I/O errors and data-path
// timeouts have their own metrics or none).
enum class ErrorKind : std::uint8_t {
  server_io,         // read/write to the upstream failed
  upstream_connect,  // connecting or authenticating to an upstream failed
  state_persist,     // a route state change could not be stored (state file, control database)
  config_reload,     // SIGHUP reload rejected
  internal,          // a bug: an invariant did not hold
  resource_limit,    // a message refused by a memory limit (limits.max_buffered_*)
};

enum class ProtocolDirection : std::uint8_t { client, server };  // who sent the bad bytes
enum class ServerState : std::uint8_t { idle, active };
enum class CancelResult : std::uint8_t { forwarded, unknown_key, failed };
enum class HealthCheckResult : std::uint8_t { ok, failed };

std::string_view to_string(QueryClass c);
std::string_view to_string(LoginFailure r);
std::string_view to_string(SplitDecision d);
// The pgshift_pinned_sessions_total reason label of a classifier pin reason (SET and
// set_config() are both "set_session"; LOAD counts as "other").
std::string_view pin_label(routing::PinReason r);
std::string_view to_string(FallbackReason r);
std::string_view to_string(ErrorKind k);
std::string_view to_string(ProtocolDirection d);
std::string_view to_string(ServerState s);
std::string_view to_string(CancelResult r);

// Children of one route, resolved once. Index with static_cast<std::size_t>(enum).
// server_connections and server_connects_* are fed from the pool registry when /metrics is
// scraped (feed_pool_metrics(), proxy/pool_report.hpp): sessions leave them alone.
struct RouteMetrics {
  using Counter = prometheus::Counter;
  using Gauge = prometheus::Gauge;
  using Histogram = prometheus::Histogram;
  template <class T>
  using PerSide = std::array<T*, 2>;

  Gauge* client_connections = nullptr;                 // logged-in clients, now
  Counter* client_connections_total = nullptr;         // logged-in clients, ever
  std::array<PerSide<Gauge>, 2> server_connections{};  // [side][ServerState]
  PerSide<Counter> server_connects_ok{}, server_connects_failed{};
  PerSide<Histogram> pool_wait{};  // seconds waited for a server
  PerSide<Counter> pool_wait_timeouts{};
  std::array<std::array<Counter*, kQueryClassCount>, 2> queries{};  // [side][QueryClass]
  PerSide<Histogram> query_duration{};  // seconds, first byte to ReadyForQuery
  std::array<Counter*, kSplitDecisionCount> split_decisions{};

  Gauge& servers(Side s, ServerState st) const {
    return *server_connections[static_cast<std::size_t>(s)][static_cast<std::size_t>(st)];
  }
  Counter& query(Side s, QueryClass c) const {
    return *queries[static_cast<std::size_t>(s)][static_cast<std::size_t>(c)];
  }
  Histogram& latency(Side s) const { return *query_duration[static_cast<std::size_t>(s)]; }
  Histogram& wait(Side s) const { return *pool_wait[static_cast<std::size_t>(s)]; }
  Counter& split(SplitDecision d) const { return *split_decisions[static_cast<std::size_t>(d)]; }
};

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  // The Prometheus text exposition format (version 0.0.4) of every series.
  std::string serialize() const;

  // All per-route children at once; cached, so cheap after the first call for a name.
  const RouteMetrics& route(const std::string& name);

  // --- client side ---------------------------------------------------------------------
  prometheus::Counter& client_accepted() { return *client_accepted_; }
  prometheus::Gauge& client_connections(const std::string& route);
  prometheus::Counter& client_connections_total(const std::string& route);
  prometheus::Counter& login_failures(LoginFailure reason);
  // Password logins slowed down or refused by client_auth.throttle (proxy/session/
  // client_auth_throttle.hpp). action: "delayed" or "refused"; key: "address" or "user" (the
  // bucket that was empty).
  prometheus::Counter& client_auth_throttled(std::string_view action, std::string_view key);

  // --- server side and pools -----------------------------------------------------------
  prometheus::Gauge& server_connections(const std::string& route, Side side, ServerState st);
  prometheus::Counter& server_connects(const std::string& route, Side side, bool ok);
  prometheus::Histogram& pool_wait(const std::string& route, Side side);
  prometheus::Counter& pool_wait_timeouts(const std::string& route, Side side);

  // --- queries and routing -------------------------------------------------------------
  prometheus::Counter& queries(const std::string& route, Side side, QueryClass cls);
  prometheus::Histogram& query_duration(const std::string& route, Side side);
  prometheus::Counter& split_decisions(const std::string& route, SplitDecision d);
  prometheus::Counter& target_fallbacks(const std::string& route, FallbackReason r);
  prometheus::Counter& pinned_sessions(const std::string& route, routing::PinReason r);

  // --- errors --------------------------------------------------------------------------
  prometheus::Counter& errors(ErrorKind kind);
  prometheus::Counter& protocol_errors(ProtocolDirection dir);
  prometheus::Counter& cancel_requests(CancelResult r);

  // --- operator surface ----------------------------------------------------------------
  // `endpoint` is a path template ("/v1/routes/{name}"), never the raw path.
  prometheus::Counter& admin_requests(std::string_view endpoint, unsigned code);
  // reason: "evicted" (a connection still waiting for its request made room for a new one)
  // or "refused" (no connection could be evicted).
  prometheus::Counter& admin_connections_dropped(std::string_view reason);
  prometheus::Gauge& upstream_healthy(const std::string& route, Side side);
  prometheus::Counter& health_checks(const std::string& route, Side side, HealthCheckResult r);
  // Changes of an upstream's health (the first result counts as a change).
  prometheus::Counter& health_changes(const std::string& route, Side side, bool healthy);
  prometheus::Gauge& route_read_ratio(const std::string& route);
  prometheus::Gauge& route_epoch(const std::string& route);
  // 1 for the route's current phase, 0 for the others (a Prometheus "state set").
  void set_route_phase(const std::string& route, config::Phase phase);
  prometheus::Counter& state_changes(const std::string& route);
  prometheus::Gauge& pause_active() { return *pause_active_; }
  // Sessions holding read buffers because they were active lately (proxy/idle_sweeper.hpp).
  prometheus::Gauge& hot_sessions() { return *hot_sessions_; }
  prometheus::Gauge& pause_waiting() { return *pause_waiting_; }
  // Receive blocks (proxy/session/io_buffer.hpp) allocated because the thread's free list
  // was empty: grows with concurrency, flat in a steady state.
  prometheus::Counter& receive_blocks_allocated() { return *receive_blocks_allocated_; }
  prometheus::Counter& pauses_total() { return *pauses_total_; }
  prometheus::Counter& pause_expirations() { return *pause_expirations_; }
  prometheus::Histogram& pause_wait() { return *pause_wait_; }
  // 1 while the control thread is connected to the control database (docs/control-plane.md).
  prometheus::Gauge& control_connected() { return *control_connected_; }
  // Fleet barrier operations this member took part in, by outcome (committed, aborted...).
  prometheus::Counter& barrier_holds(const std::string& outcome) {
    return barrier_holds_family_.Add({{"outcome", outcome}});
  }

 private:
  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>& client_accepted_family_;
  prometheus::Family<prometheus::Gauge>& client_connections_family_;
  prometheus::Family<prometheus::Counter>& client_connections_total_family_;
  prometheus::Family<prometheus::Counter>& login_failures_family_;
  prometheus::Family<prometheus::Gauge>& server_connections_family_;
  prometheus::Family<prometheus::Counter>& server_connects_family_;
  prometheus::Family<prometheus::Histogram>& pool_wait_family_;
  prometheus::Family<prometheus::Counter>& pool_wait_timeouts_family_;
  prometheus::Family<prometheus::Counter>& queries_family_;
  prometheus::Family<prometheus::Histogram>& query_duration_family_;
  prometheus::Family<prometheus::Counter>& split_decisions_family_;
  prometheus::Family<prometheus::Counter>& target_fallbacks_family_;
  prometheus::Family<prometheus::Counter>& pinned_sessions_family_;
  prometheus::Family<prometheus::Counter>& errors_family_;
  prometheus::Family<prometheus::Counter>& protocol_errors_family_;
  prometheus::Family<prometheus::Counter>& cancel_requests_family_;
  prometheus::Family<prometheus::Counter>& admin_requests_family_;
  prometheus::Family<prometheus::Counter>& admin_dropped_family_;
  prometheus::Family<prometheus::Counter>& auth_throttled_family_;
  prometheus::Family<prometheus::Gauge>& upstream_healthy_family_;
  prometheus::Family<prometheus::Counter>& health_checks_family_;
  prometheus::Family<prometheus::Counter>& health_changes_family_;
  prometheus::Family<prometheus::Gauge>& route_read_ratio_family_;
  prometheus::Family<prometheus::Gauge>& route_epoch_family_;
  prometheus::Family<prometheus::Gauge>& route_phase_family_;
  prometheus::Family<prometheus::Counter>& state_changes_family_;
  prometheus::Family<prometheus::Gauge>& pause_active_family_;
  prometheus::Family<prometheus::Gauge>& hot_sessions_family_;
  prometheus::Family<prometheus::Gauge>& pause_waiting_family_;
  prometheus::Family<prometheus::Counter>& receive_blocks_allocated_family_;
  prometheus::Family<prometheus::Counter>& pauses_total_family_;
  prometheus::Family<prometheus::Counter>& pause_expirations_family_;
  prometheus::Family<prometheus::Histogram>& pause_wait_family_;
  prometheus::Family<prometheus::Gauge>& control_connected_family_;
  prometheus::Family<prometheus::Counter>& barrier_holds_family_;

  prometheus::Counter* client_accepted_;
  prometheus::Gauge* pause_active_;
  prometheus::Gauge* hot_sessions_;
  prometheus::Gauge* pause_waiting_;
  prometheus::Counter* receive_blocks_allocated_;
  prometheus::Counter* pauses_total_;
  prometheus::Counter* pause_expirations_;
  prometheus::Histogram* pause_wait_;
  prometheus::Gauge* control_connected_;

  std::mutex routes_mu_;
  std::map<std::string, std::unique_ptr<RouteMetrics>, std::less<>> routes_;
};

// The process-wide registry.
Metrics& metrics();

// Seconds as a double, for Histogram::Observe.
template <class Duration>
double seconds(Duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace pgshift::proxy
