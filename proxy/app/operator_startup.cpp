#include "proxy/app/operator_startup.hpp"

#include "proxy/control/health_checker.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/migrate/cutover_local_fleet.hpp"
#include "proxy/migrate/cutover_runner.hpp"

namespace pgshift::proxy {

std::shared_ptr<AdminServer> start_operator_surface(Runtime& runtime,
                                                    asio::any_io_executor executor) {
  const auto snap = runtime.snapshot();
  const auto& cfg = *snap->config;
  auto states = std::make_shared<RouteStateStore>(cfg.state_file);
  states->load(cfg);
  runtime.states = std::move(states);
  runtime.pause = std::make_shared<PauseGate>();
  // Cutover and rollback on this sidecar's own pause gate and state store (no control
  // database yet: the PostgreSQL control plane replaces the fleet when it lands).
  runtime.operations = std::make_shared<migrate::CutoverRunner>(
      runtime, std::make_shared<migrate::SidecarFleet>(runtime.states, runtime.pause));
  runtime.health = std::make_shared<HealthChecker>(runtime, executor);
  runtime.health->start();
  if (!cfg.admin.enabled) return nullptr;
  auto admin = std::make_shared<AdminServer>(runtime, executor);
  admin->start(cfg.admin.host, cfg.admin.port);
  return admin;
}

void stop_operator_surface(Runtime& runtime, const std::shared_ptr<AdminServer>& admin) {
  if (admin) admin->stop();
  if (runtime.health) runtime.health->stop();
  runtime.operations.reset();  // joins a running operation (every step has a deadline)
  // Held transactions must not outlive the process's I/O threads.
  if (runtime.pause) runtime.pause->resume();
  runtime.health.reset();
}

}  // namespace pgshift::proxy
