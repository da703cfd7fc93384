// The metrics registry: children are cached and the exposition names every family.
#include "proxy/telemetry/metrics.hpp"

#include <gtest/gtest.h>

namespace pgshift::proxy {
namespace {

TEST(Metrics, RouteChildrenAreCachedAndCount) {
  auto& m = metrics();
  const auto& a = m.route("metrics-test-route");
  const auto& b = m.route("metrics-test-route");
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.query(Side::target, QueryClass::read),
            &m.queries("metrics-test-route", Side::target, QueryClass::read));
  // The registry is process-wide (and tests may repeat): compare deltas, not totals.
  auto& reads = a.query(Side::target, QueryClass::read);
  const double reads_before = reads.Value();
  reads.Increment();
  reads.Increment();
  EXPECT_EQ(reads.Value(), reads_before + 2);
  a.latency(Side::source).Observe(0.002);
  a.split(SplitDecision::fallback).Increment();
  a.servers(Side::source, ServerState::idle).Set(3);
  const auto text = m.serialize();
  EXPECT_NE(
      text.find(R"(pgshift_queries_total{class="read",route="metrics-test-route",side="target"} )"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          R"(pgshift_split_decisions_total{decision="fallback",route="metrics-test-route"} )"),
      std::string::npos);
  EXPECT_NE(
      text.find(
          R"(pgshift_server_connections{route="metrics-test-route",side="source",state="idle"} 3)"),
      std::string::npos);
  EXPECT_NE(text.find("pgshift_query_duration_seconds_bucket{"), std::string::npos);
}

TEST(Metrics, EveryFamilyIsExposed) {
  auto& m = metrics();
  m.route("metrics-test-families");
  m.target_fallbacks("metrics-test-families", FallbackReason::target_unhealthy).Increment();
  m.pinned_sessions("metrics-test-families", routing::PinReason::listen).Increment();
  m.admin_requests("/healthz", 200).Increment();
  m.upstream_healthy("metrics-test-families", Side::target).Set(1);
  m.health_checks("metrics-test-families", Side::target, HealthCheckResult::ok).Increment();
  m.health_changes("metrics-test-families", Side::target, true).Increment();
  m.route_read_ratio("metrics-test-families").Set(0.125);
  m.route_epoch("metrics-test-families").Set(4);
  m.set_route_phase("metrics-test-families", config::Phase::sync);
  m.state_changes("metrics-test-families").Increment();
  m.client_accepted().Increment();
  const auto text = m.serialize();
  for (const char* name : {"pgshift_client_accepted_total",
                           "pgshift_client_connections",
                           "pgshift_client_connections_total",
                           "pgshift_client_login_failures_total",
                           "pgshift_server_connections",
                           "pgshift_server_connects_total",
                           "pgshift_pool_wait_seconds",
                           "pgshift_pool_wait_timeouts_total",
                           "pgshift_queries_total",
                           "pgshift_query_duration_seconds",
                           "pgshift_split_decisions_total",
                           "pgshift_split_fallbacks_total",
                           "pgshift_session_pins_total",
                           "pgshift_errors_total",
                           "pgshift_protocol_errors_total",
                           "pgshift_cancel_requests_total",
                           "pgshift_client_auth_throttled_total",
                           "pgshift_admin_requests_total",
                           "pgshift_upstream_healthy",
                           "pgshift_health_checks_total",
                           "pgshift_health_changes_total",
                           "pgshift_route_read_ratio",
                           "pgshift_route_epoch",
                           "pgshift_route_phase",
                           "pgshift_route_state_changes_total",
                           "pgshift_pause_active",
                           "pgshift_pause_waiting",
                           "pgshift_pauses_total",
                           "pgshift_pause_expirations_total",
                           "pgshift_pause_wait_seconds"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + name + " "), std::string::npos) << name;
  }
  EXPECT_NE(text.find(R"(pgshift_route_phase{phase="sync",route="metrics-test-families"} 1)"),
            std::string::npos);
  EXPECT_NE(
      text.find(R"(pgshift_route_phase{phase="source_only",route="metrics-test-families"} 0)"),
      std::string::npos);
  EXPECT_NE(text.find(R"(pgshift_client_login_failures_total{reason="auth_failed"} 0)"),
            std::string::npos);
}

}  // namespace
}  // namespace pgshift::proxy
