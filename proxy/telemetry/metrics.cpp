#include "proxy/telemetry/metrics.hpp"

#include <prometheus/text_serializer.h>

#include "routing/migration_state.hpp"

namespace pgshift::proxy {
namespace {

namespace prom = prometheus;

// Latency of one query or transaction: 100 µs to 30 s.
const prom::Histogram::BucketBoundaries kQueryBuckets = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
// Waiting for a pooled server or behind a pause: 10 µs to the 120 s query_wait_timeout.
const prom::Histogram::BucketBoundaries kWaitBuckets = {
    0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

constexpr config::Phase kPhases[] = {config::Phase::source_only, config::Phase::sync,
                                     config::Phase::cutover, config::Phase::target_primary,
                                     config::Phase::target_only};

std::string side_label(Side s) {
  return std::string(routing::to_string(s));
}

// Name and help text of each family Metrics registers (docs/metrics.md describes them).
struct FamilyDoc {
  const char* name;
  const char* help;
};
constexpr FamilyDoc kClientAccepted{"pgshift_client_accepted_total",
                                    "TCP connections accepted on the client listener."};
constexpr FamilyDoc kClientConnections{"pgshift_client_connections",
                                       "Logged-in client connections, by route."};
constexpr FamilyDoc kClientConnectionsTotal{"pgshift_client_connections_total",
                                            "Client logins that succeeded, by route."};
constexpr FamilyDoc kLoginFailures{"pgshift_client_login_failures_total",
                                   "Client logins that failed, by reason."};
constexpr FamilyDoc kServerConnections{"pgshift_server_connections",
                                       "Upstream server connections, by route, side and state."};
constexpr FamilyDoc kServerConnects{"pgshift_server_connects_total",
                                    "Upstream connection attempts, by route, side and result."};
constexpr FamilyDoc kPoolWait{"pgshift_pool_wait_seconds",
                              "Time a client waited for a server connection from the pool."};
constexpr FamilyDoc kPoolWaitTimeouts{"pgshift_pool_wait_timeouts_total",
                                      "Clients that gave up waiting for a server connection."};
constexpr FamilyDoc kQueries{"pgshift_queries_total", "Queries relayed, by route, side and class."};
constexpr FamilyDoc kQueryDuration{"pgshift_query_duration_seconds",
                                   "Query latency seen by pgshift, by route and side."};
constexpr FamilyDoc kSplitDecisions{"pgshift_split_decisions_total",
                                    "Read routing decisions, by route and decision."};
constexpr FamilyDoc kTargetFallbacks{"pgshift_split_fallbacks_total",
                                     "Reads meant for the target that went to the source."};
constexpr FamilyDoc kPinnedSessions{"pgshift_session_pins_total",
                                    "Sessions pinned to a server connection, by reason."};
constexpr FamilyDoc kErrors{"pgshift_errors_total", "Errors, by kind."};
constexpr FamilyDoc kProtocolErrors{"pgshift_protocol_errors_total",
                                    "Malformed protocol messages, by sender."};
constexpr FamilyDoc kCancelRequests{"pgshift_cancel_requests_total",
                                    "CancelRequest messages from clients, by result."};
constexpr FamilyDoc kAdminRequests{"pgshift_admin_requests_total",
                                   "Admin API requests, by endpoint and status code."};
constexpr FamilyDoc kAdminDropped{
    "pgshift_admin_connections_dropped_total",
    "Admin API connections closed to stay under the connection limit, by reason."};
constexpr FamilyDoc kAuthThrottled{"pgshift_client_auth_throttled_total",
                                   "Password logins delayed or refused after repeated failures, by "
                                   "action and by the bucket (address or user) that was empty."};
constexpr FamilyDoc kUpstreamHealthy{"pgshift_upstream_healthy",
                                     "1 if the last health check of the upstream passed."};
constexpr FamilyDoc kHealthChecks{"pgshift_health_checks_total",
                                  "Upstream health checks, by route, side and result."};
constexpr FamilyDoc kHealthChanges{"pgshift_health_changes_total",
                                   "Upstream health changes, by route, side and new state."};
constexpr FamilyDoc kRouteReadRatio{"pgshift_route_read_ratio",
                                    "Share of split reads sent to the target (0..1)."};
constexpr FamilyDoc kRouteEpoch{"pgshift_route_epoch", "Migration state epoch of the route."};
constexpr FamilyDoc kRoutePhase{"pgshift_route_phase",
                                "1 for the route's current migration phase."};
constexpr FamilyDoc kStateChanges{"pgshift_route_state_changes_total",
                                  "Migration state changes applied, by route."};
constexpr FamilyDoc kPauseActive{"pgshift_pause_active",
                                 "1 while new transactions are held by POST /v1/pause."};
constexpr FamilyDoc kHotSessions{"pgshift_client_connections_hot",
                                 "Client connections holding read buffers because they were active "
                                 "in the last one to two seconds."};
constexpr FamilyDoc kReceiveBlocksAllocated{
    "pgshift_receive_blocks_allocated_total",
    "16 KiB receive blocks allocated because the I/O thread had none spare."};
constexpr FamilyDoc kPauseWaiting{"pgshift_pause_waiting",
                                  "Transactions held by the pause right now."};
constexpr FamilyDoc kPausesTotal{"pgshift_pauses_total", "Pauses started through the admin API."};
constexpr FamilyDoc kPauseExpirations{"pgshift_pause_expirations_total",
                                      "Pauses that ended by their timeout, not by resume."};
constexpr FamilyDoc kPauseWait{"pgshift_pause_wait_seconds",
                               "Time a transaction was held by a pause."};
constexpr FamilyDoc kControlConnected{"pgshift_control_connected",
                                      "1 while the control thread is connected to the control "
                                      "database; 1 for a sidecar without one."};
constexpr FamilyDoc kBarrierHolds{
    "pgshift_barrier_holds_total",
    "Fleet barrier operations this member held a route for, by outcome."};

prom::Family<prom::Counter>& counter(prom::Registry& r, const FamilyDoc& d) {
  return prom::BuildCounter().Name(d.name).Help(d.help).Register(r);
}
prom::Family<prom::Gauge>& gauge(prom::Registry& r, const FamilyDoc& d) {
  return prom::BuildGauge().Name(d.name).Help(d.help).Register(r);
}
prom::Family<prom::Histogram>& histogram(prom::Registry& r, const FamilyDoc& d) {
  return prom::BuildHistogram().Name(d.name).Help(d.help).Register(r);
}

}  // namespace

std::string_view to_string(QueryClass c) {
  switch (c) {
    case QueryClass::read:
      return "read";
    case QueryClass::write:
      return "write";
    case QueryClass::other:
      return "other";
  }
  return "other";
}

std::string_view to_string(LoginFailure r) {
  switch (r) {
    case LoginFailure::invalid_startup:
      return "invalid_startup";
    case LoginFailure::tls_required:
      return "tls_required";
    case LoginFailure::tls_handshake:
      return "tls_handshake";
    case LoginFailure::auth_failed:
      return "auth_failed";
    case LoginFailure::unknown_database:
      return "unknown_database";
    case LoginFailure::upstream_failed:
      return "upstream_failed";
    case LoginFailure::timeout:
      return "timeout";
    case LoginFailure::shutting_down:
      return "shutting_down";
    case LoginFailure::too_many_clients:
      return "too_many_clients";
    case LoginFailure::hba_rejected:
      return "hba_rejected";
    case LoginFailure::throttled:
      return "throttled";
  }
  return "unknown";
}

std::string_view to_string(SplitDecision d) {
  switch (d) {
    case SplitDecision::target:
      return "target";
    case SplitDecision::source:
      return "source";
    case SplitDecision::ryw_hold:
      return "ryw_hold";
    case SplitDecision::fallback:
      return "fallback";
    case SplitDecision::authoritative:
      return "authoritative";
  }
  return "unknown";
}

std::string_view pin_label(routing::PinReason r) {
  switch (r) {
    case routing::PinReason::set:
    case routing::PinReason::set_config:
      return "set_session";
    case routing::PinReason::listen:
      return "listen";
    case routing::PinReason::advisory_lock:
      return "advisory_lock";
    case routing::PinReason::temp_table:
      return "temp_table";
    case routing::PinReason::with_hold_cursor:
      return "with_hold";
    case routing::PinReason::prepare:
      return "prepare_sql";
    case routing::PinReason::none:
    case routing::PinReason::load:
      return "other";
  }
  return "other";
}

std::string_view to_string(FallbackReason r) {
  switch (r) {
    case FallbackReason::target_unhealthy:
      return "target_unhealthy";
    case FallbackReason::target_connect:
      return "target_connect";
    case FallbackReason::target_lagging:
      return "target_lagging";
  }
  return "unknown";
}

std::string_view to_string(ErrorKind k) {
  switch (k) {
    case ErrorKind::server_io:
      return "server_io";
    case ErrorKind::upstream_connect:
      return "upstream_connect";
    case ErrorKind::state_persist:
      return "state_persist";
    case ErrorKind::config_reload:
      return "config_reload";
    case ErrorKind::internal:
      return "internal";
    case ErrorKind::resource_limit:
      return "resource_limit";
  }
  return "internal";
}

std::string_view to_string(ProtocolDirection d) {
  return d == ProtocolDirection::client ? "client" : "server";
}
std::string_view to_string(ServerState s) {
  return s == ServerState::idle ? "idle" : "active";
}

std::string_view to_string(CancelResult r) {
  switch (r) {
    case CancelResult::forwarded:
      return "forwarded";
    case CancelResult::unknown_key:
      return "unknown_key";
    case CancelResult::failed:
      return "failed";
  }
  return "failed";
}

namespace {

// Series for every enum value exist from the start, so dashboards and alerts see zeros
// instead of absent series.
void create_every_series(Metrics& m) {
  for (auto r :
       {LoginFailure::invalid_startup, LoginFailure::tls_required, LoginFailure::tls_handshake,
        LoginFailure::auth_failed, LoginFailure::unknown_database, LoginFailure::upstream_failed,
        LoginFailure::timeout, LoginFailure::shutting_down, LoginFailure::too_many_clients,
        LoginFailure::hba_rejected, LoginFailure::throttled}) {
    m.login_failures(r);
  }
  for (std::string_view action : {"delayed", "refused"}) {
    for (std::string_view key : {"address", "user"}) m.client_auth_throttled(action, key);
  }
  for (auto k : {ErrorKind::server_io, ErrorKind::upstream_connect, ErrorKind::state_persist,
                 ErrorKind::config_reload, ErrorKind::internal, ErrorKind::resource_limit}) {
    m.errors(k);
  }
  m.protocol_errors(ProtocolDirection::client);
  m.protocol_errors(ProtocolDirection::server);
  for (auto r : {CancelResult::forwarded, CancelResult::unknown_key, CancelResult::failed}) {
    m.cancel_requests(r);
  }
}

}  // namespace

Metrics::Metrics()
    : registry_(std::make_shared<prom::Registry>()),
      client_accepted_family_(counter(*registry_, kClientAccepted)),
      client_connections_family_(gauge(*registry_, kClientConnections)),
      client_connections_total_family_(counter(*registry_, kClientConnectionsTotal)),
      login_failures_family_(counter(*registry_, kLoginFailures)),
      server_connections_family_(gauge(*registry_, kServerConnections)),
      server_connects_family_(counter(*registry_, kServerConnects)),
      pool_wait_family_(histogram(*registry_, kPoolWait)),
      pool_wait_timeouts_family_(counter(*registry_, kPoolWaitTimeouts)),
      queries_family_(counter(*registry_, kQueries)),
      query_duration_family_(histogram(*registry_, kQueryDuration)),
      split_decisions_family_(counter(*registry_, kSplitDecisions)),
      target_fallbacks_family_(counter(*registry_, kTargetFallbacks)),
      pinned_sessions_family_(counter(*registry_, kPinnedSessions)),
      errors_family_(counter(*registry_, kErrors)),
      protocol_errors_family_(counter(*registry_, kProtocolErrors)),
      cancel_requests_family_(counter(*registry_, kCancelRequests)),
      admin_requests_family_(counter(*registry_, kAdminRequests)),
      admin_dropped_family_(counter(*registry_, kAdminDropped)),
      auth_throttled_family_(counter(*registry_, kAuthThrottled)),
      upstream_healthy_family_(gauge(*registry_, kUpstreamHealthy)),
      health_checks_family_(counter(*registry_, kHealthChecks)),
      health_changes_family_(counter(*registry_, kHealthChanges)),
      route_read_ratio_family_(gauge(*registry_, kRouteReadRatio)),
      route_epoch_family_(gauge(*registry_, kRouteEpoch)),
      route_phase_family_(gauge(*registry_, kRoutePhase)),
      state_changes_family_(counter(*registry_, kStateChanges)),
      pause_active_family_(gauge(*registry_, kPauseActive)),
      hot_sessions_family_(gauge(*registry_, kHotSessions)),
      pause_waiting_family_(gauge(*registry_, kPauseWaiting)),
      receive_blocks_allocated_family_(counter(*registry_, kReceiveBlocksAllocated)),
      pauses_total_family_(counter(*registry_, kPausesTotal)),
      pause_expirations_family_(counter(*registry_, kPauseExpirations)),
      pause_wait_family_(histogram(*registry_, kPauseWait)),
      control_connected_family_(gauge(*registry_, kControlConnected)),
      barrier_holds_family_(counter(*registry_, kBarrierHolds)),
      client_accepted_(&client_accepted_family_.Add({})),
      pause_active_(&pause_active_family_.Add({})),
      hot_sessions_(&hot_sessions_family_.Add({})),
      pause_waiting_(&pause_waiting_family_.Add({})),
      receive_blocks_allocated_(&receive_blocks_allocated_family_.Add({})),
      pauses_total_(&pauses_total_family_.Add({})),
      pause_expirations_(&pause_expirations_family_.Add({})),
      pause_wait_(&pause_wait_family_.Add({}, kWaitBuckets)),
      control_connected_(&control_connected_family_.Add({})) {
  control_connected_->Set(1);
  create_every_series(*this);
}

std::string Metrics::serialize() const {
  return prom::TextSerializer().Serialize(registry_->Collect());
}

const RouteMetrics& Metrics::route(const std::string& name) {
  std::lock_guard lock(routes_mu_);
  if (auto it = routes_.find(name); it != routes_.end()) return *it->second;
  auto m = std::make_unique<RouteMetrics>();
  m->client_connections = &client_connections(name);
  m->client_connections_total = &client_connections_total(name);
  for (Side side : {Side::source, Side::target}) {
    const auto s = static_cast<std::size_t>(side);
    for (auto st : {ServerState::idle, ServerState::active}) {
      m->server_connections[s][static_cast<std::size_t>(st)] = &server_connections(name, side, st);
    }
    m->server_connects_ok[s] = &server_connects(name, side, true);
    m->server_connects_failed[s] = &server_connects(name, side, false);
    m->pool_wait[s] = &pool_wait(name, side);
    m->pool_wait_timeouts[s] = &pool_wait_timeouts(name, side);
    for (auto c : {QueryClass::read, QueryClass::write, QueryClass::other}) {
      m->queries[s][static_cast<std::size_t>(c)] = &queries(name, side, c);
    }
    m->query_duration[s] = &query_duration(name, side);
  }
  for (auto d : {SplitDecision::target, SplitDecision::source, SplitDecision::ryw_hold,
                 SplitDecision::fallback, SplitDecision::authoritative}) {
    m->split_decisions[static_cast<std::size_t>(d)] = &split_decisions(name, d);
  }
  auto& ref = *m;
  routes_.emplace(name, std::move(m));
  return ref;
}

prom::Gauge& Metrics::client_connections(const std::string& route) {
  return client_connections_family_.Add({{"route", route}});
}
prom::Counter& Metrics::client_connections_total(const std::string& route) {
  return client_connections_total_family_.Add({{"route", route}});
}
prom::Counter& Metrics::login_failures(LoginFailure reason) {
  return login_failures_family_.Add({{"reason", std::string(to_string(reason))}});
}

prom::Gauge& Metrics::server_connections(const std::string& route, Side side, ServerState st) {
  return server_connections_family_.Add(
      {{"route", route}, {"side", side_label(side)}, {"state", std::string(to_string(st))}});
}
prom::Counter& Metrics::server_connects(const std::string& route, Side side, bool ok) {
  return server_connects_family_.Add(
      {{"route", route}, {"side", side_label(side)}, {"result", ok ? "ok" : "error"}});
}
prom::Histogram& Metrics::pool_wait(const std::string& route, Side side) {
  return pool_wait_family_.Add({{"route", route}, {"side", side_label(side)}}, kWaitBuckets);
}
prom::Counter& Metrics::pool_wait_timeouts(const std::string& route, Side side) {
  return pool_wait_timeouts_family_.Add({{"route", route}, {"side", side_label(side)}});
}

prom::Counter& Metrics::queries(const std::string& route, Side side, QueryClass cls) {
  return queries_family_.Add(
      {{"route", route}, {"side", side_label(side)}, {"class", std::string(to_string(cls))}});
}
prom::Histogram& Metrics::query_duration(const std::string& route, Side side) {
  return query_duration_family_.Add({{"route", route}, {"side", side_label(side)}}, kQueryBuckets);
}
prom::Counter& Metrics::split_decisions(const std::string& route, SplitDecision d) {
  return split_decisions_family_.Add({{"route", route}, {"decision", std::string(to_string(d))}});
}
prom::Counter& Metrics::target_fallbacks(const std::string& route, FallbackReason r) {
  return target_fallbacks_family_.Add({{"route", route}, {"reason", std::string(to_string(r))}});
}
prom::Counter& Metrics::pinned_sessions(const std::string& route, routing::PinReason r) {
  return pinned_sessions_family_.Add({{"route", route}, {"reason", std::string(pin_label(r))}});
}

prom::Counter& Metrics::errors(ErrorKind kind) {
  return errors_family_.Add({{"kind", std::string(to_string(kind))}});
}
prom::Counter& Metrics::protocol_errors(ProtocolDirection dir) {
  return protocol_errors_family_.Add({{"direction", std::string(to_string(dir))}});
}
prom::Counter& Metrics::cancel_requests(CancelResult r) {
  return cancel_requests_family_.Add({{"result", std::string(to_string(r))}});
}

prom::Counter& Metrics::admin_requests(std::string_view endpoint, unsigned code) {
  return admin_requests_family_.Add(
      {{"endpoint", std::string(endpoint)}, {"code", std::to_string(code)}});
}
prom::Counter& Metrics::client_auth_throttled(std::string_view action, std::string_view key) {
  return auth_throttled_family_.Add({{"action", std::string(action)}, {"key", std::string(key)}});
}
prom::Counter& Metrics::admin_connections_dropped(std::string_view reason) {
  return admin_dropped_family_.Add({{"reason", std::string(reason)}});
}
prom::Gauge& Metrics::upstream_healthy(const std::string& route, Side side) {
  return upstream_healthy_family_.Add({{"route", route}, {"side", side_label(side)}});
}
prom::Counter& Metrics::health_checks(const std::string& route, Side side, HealthCheckResult r) {
  return health_checks_family_.Add({{"route", route},
                                    {"side", side_label(side)},
                                    {"result", r == HealthCheckResult::ok ? "ok" : "failed"}});
}
prom::Counter& Metrics::health_changes(const std::string& route, Side side, bool healthy) {
  return health_changes_family_.Add(
      {{"route", route}, {"side", side_label(side)}, {"to", healthy ? "healthy" : "unhealthy"}});
}
prom::Gauge& Metrics::route_read_ratio(const std::string& route) {
  return route_read_ratio_family_.Add({{"route", route}});
}
prom::Gauge& Metrics::route_epoch(const std::string& route) {
  return route_epoch_family_.Add({{"route", route}});
}
void Metrics::set_route_phase(const std::string& route, config::Phase phase) {
  for (auto p : kPhases) {
    route_phase_family_.Add({{"route", route}, {"phase", std::string(routing::phase_name(p))}})
        .Set(p == phase ? 1 : 0);
  }
}
prom::Counter& Metrics::state_changes(const std::string& route) {
  return state_changes_family_.Add({{"route", route}});
}

Metrics& metrics() {
  static Metrics instance;
  return instance;
}

}  // namespace pgshift::proxy
