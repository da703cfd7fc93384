// GET /healthz (liveness), GET /readyz (readiness), GET /metrics (Prometheus).
#include "proxy/admin/api.hpp"
#include "proxy/control/health_checker.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/state_store.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

// Gauges that mirror state owned elsewhere are refreshed at scrape time, so they are right
// even after a reload added or removed routes.
void refresh_state_gauges(const Runtime& runtime) {
  auto& m = metrics();
  if (runtime.pause) runtime.pause->status();  // also ends an expired pause (pgshift_pause_active)
  if (!runtime.states) return;
  for (const auto& [name, s] : runtime.states->snapshot()->routes) {
    m.route_read_ratio(name).Set(static_cast<double>(s.read_percent.basis_points()) / 10000.0);
    m.route_epoch(name).Set(static_cast<double>(s.epoch));
    m.set_route_phase(name, s.phase);
  }
}

}  // namespace

AdminResponse handle_healthz(const AdminCall&) {
  json::object o;
  o["status"] = "ok";
  return json_response(http::status::ok, o);
}

AdminResponse handle_readyz(const AdminCall& call) {
  json::array reasons;
  const auto snap = call.runtime.snapshot();
  if (!snap || !snap->config) reasons.emplace_back("configuration not loaded");
  if (call.runtime.draining.load()) reasons.emplace_back("shutting down");
  if (!call.runtime.health) reasons.emplace_back("health checker not running");
  if (snap && snap->config && call.runtime.health) {
    for (const auto& rr : snap->routes) {
      const auto& name = rr.route->name;
      const auto health = call.runtime.health->route(name);
      const auto report = health ? health->source.report() : UpstreamHealth::Report{};
      const std::string where = "route " + name + ": source " + rr.route->source.host + ":" +
                                std::to_string(rr.route->source.port);
      if (!report.checked) {
        reasons.emplace_back(where + " not checked yet");
      } else if (!report.healthy) {
        reasons.emplace_back(where + " unreachable: " + report.last_error);
      }
    }
  }
  json::object o;
  const bool ready = reasons.empty();
  o["status"] = ready ? "ready" : "not_ready";
  o["reasons"] = std::move(reasons);
  return json_response(ready ? http::status::ok : http::status::service_unavailable, o);
}

AdminResponse handle_metrics(const AdminCall& call) {
  refresh_state_gauges(call.runtime);
  refresh_pool_metrics(call.runtime);
  AdminResponse res(http::status::ok, 11);
  res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
  res.set(http::field::cache_control, "no-store");
  res.body() = metrics().serialize();
  res.prepare_payload();
  return res;
}

}  // namespace pgshift::proxy
