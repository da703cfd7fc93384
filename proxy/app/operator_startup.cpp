#include "proxy/app/operator_startup.hpp"

#include "proxy/control/health_checker.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/pg_state_store.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/control/fleets.hpp"
#include "proxy/migrate/cutover_runner.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy {

std::shared_ptr<AdminServer> start_operator_surface(Runtime& runtime,
                                                    asio::any_io_executor executor) {
  const auto snap = runtime.snapshot();
  const auto& cfg = *snap->config;
  runtime.pause = std::make_shared<PauseGate>();
  if (auto control = config::control_upstream(cfg)) {
    PgStateStore::Options o;
    o.conn = pgclient::conninfo_for(*control);
    o.poll = cfg.control.poll;
    o.member_timeout = cfg.control.member_timeout;
    o.address =
        cfg.listen.host + ":" + std::to_string(cfg.listen.port) +
        (cfg.admin.enabled ? " admin " + cfg.admin.host + ":" + std::to_string(cfg.admin.port)
                           : "");
    auto states = std::make_shared<PgStateStore>(std::move(o), runtime.pause);
    states->load(cfg);
    states->start(std::chrono::milliseconds(5000));
    runtime.states = std::move(states);
  } else {
    if (cfg.control.mode == config::ControlMode::automatic && config::first_target_route(cfg)) {
      log_info(
          "control: file (the first route's target has no fixed user and database for "
          "a control plane; set control: to share state across sidecars)",
          {f("state_file", cfg.state_file)});
    }
    auto states = std::make_shared<RouteStateStore>(cfg.state_file);
    states->load(cfg);
    runtime.states = std::move(states);
  }
  // Cutover, rollback, finalize and recover: the fleet is the control plane's (every
  // sidecar sharing the control database) or, in file mode, this sidecar alone.
  std::shared_ptr<control::Fleet> fleet;
  if (std::dynamic_pointer_cast<PgStateStore>(runtime.states)) {
    fleet = control::PgFleet::from_config(cfg);
  } else {
    fleet = std::make_shared<control::LocalFleet>(
        std::dynamic_pointer_cast<RouteStateStore>(runtime.states), runtime.pause);
  }
  runtime.operations = std::make_shared<migrate::CutoverRunner>(runtime, std::move(fleet));
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
  if (runtime.states) runtime.states->close();  // leaves the fleet (member row deleted)
  runtime.health.reset();
}

}  // namespace pgshift::proxy
