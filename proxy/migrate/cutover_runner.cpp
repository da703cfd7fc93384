#include "proxy/migrate/cutover_runner.hpp"

#include "proxy/control/state_store.hpp"
#include "proxy/migrate/mirror_start.hpp"
#include "proxy/migrate/sync_common.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::migrate {
namespace json = boost::json;

boost::json::object to_json(const StepRecord& step) {
  json::object o;
  o["name"] = step.name;
  o["status"] = step.status;
  o["duration_ms"] = step.duration.count();
  o["detail"] = step.detail;
  return o;
}

boost::json::object to_json(const SwitchOutcome& out) {
  json::object o;
  o["route"] = out.route;
  o["kind"] = std::string(to_string(out.kind));
  o["state"] = out.result;
  json::array steps;
  for (const auto& s : out.steps) steps.push_back(to_json(s));
  o["steps"] = std::move(steps);
  o["summary"] = out.summary();
  o["error"] = out.error;
  o["databases"] = out.databases;
  o["total_ms"] = out.total.count();
  o["pause_ms"] = out.pause.count();
  o["held_transactions"] = out.held_transactions;
  return o;
}

CutoverRunner::CutoverRunner(proxy::Runtime& runtime, std::shared_ptr<control::Fleet> fleet)
    : runtime_(runtime), fleet_(std::move(fleet)) {}

CutoverRunner::~CutoverRunner() {
  std::thread t;
  {
    std::lock_guard lock(mu_);
    t = std::move(thread_);
  }
  if (t.joinable()) t.join();
}

std::optional<SwitchEndpoints> CutoverRunner::endpoints_of(const config::Route& route,
                                                           std::string& error) {
  if (!route.target) {
    error = "route " + route.name + " has no target";
    return std::nullopt;
  }
  auto database = [&](const config::Upstream& u) -> std::string {
    if (!u.database.empty()) return u.database;
    return route.client_database == "*" ? std::string() : route.client_database;
  };
  SwitchEndpoints e;
  for (const auto* u : {&route.source, &*route.target}) {
    if (u->passthrough || u->user.empty()) {
      error = "route " + route.name +
              ": cutover needs fixed credentials (user and password) "
              "on both upstreams, not passthrough";
      return std::nullopt;
    }
    if (database(*u).empty()) {
      error = "route " + route.name +
              ": set source.database and target.database (the route "
              "matches every database, so the one to switch is not known)";
      return std::nullopt;
    }
  }
  e.source = pgclient::conninfo_for(route.source, database(route.source));
  e.target = pgclient::conninfo_for(*route.target, database(*route.target));
  e.source.application_name = e.target.application_name = "pgshift-cutover";
  auto sub = [](pgclient::ConnInfo c) {
    c.application_name = "pgshift";
    return pgclient::to_conninfo_string(c);
  };
  e.source_as_seen_from_target = sub(e.source);
  e.target_as_seen_from_source = sub(e.target);
  return e;
}

// The mirror's side of a switch: the route's tables as sync.tables selects them, and this
// sidecar's mirror of the route.
SwitchOptions::Mirror CutoverRunner::mirror_options(const config::Route& route) const {
  SwitchOptions::Mirror m;
  m.tables = [r = route](pgclient::Connection& db) {
    std::vector<TableName> out;
    for (const auto& t : route_tables(db, r)) out.push_back({t.schema, t.name});
    return out;
  };
  if (runtime_.mirror) {
    m.local = [sink = runtime_.mirror, name = route.name] { return sink->drain_state(name); };
  }
  return m;
}

proxy::OperationStarted CutoverRunner::start(const proxy::OperationRequest& request) {
  proxy::OperationStarted r;
  SwitchKind kind = request.kind == "rollback"       ? SwitchKind::rollback
                    : request.kind == "finalize"     ? SwitchKind::finalize
                    : request.kind == "recover"      ? SwitchKind::recover
                    : request.kind == "mirror-start" ? SwitchKind::mirror_start
                    : request.kind == "mirror-stop"  ? SwitchKind::mirror_stop
                                                     : SwitchKind::cutover;
  const bool mirror_op = kind == SwitchKind::mirror_start || kind == SwitchKind::mirror_stop;
  const auto snap = runtime_.snapshot();
  const config::Route* route = snap->config->find_route(request.route);
  if (!route) {
    r.status = 404;
    r.error = "unknown route \"" + request.route + "\"";
    return r;
  }
  const bool mirrored = route->sync.mode == config::SyncMode::mirror;
  if (mirror_op && !mirrored) {
    r.status = 409;
    r.error = "route " + request.route + " does not mirror (sync.mode is " +
              std::string(config::to_string(route->sync.mode)) + ")";
    return r;
  }
  auto endpoints = endpoints_of(*route, r.error);
  if (!endpoints) {
    r.status = 409;
    return r;
  }
  const auto states = runtime_.states->snapshot();
  const auto* current = states->find(request.route);
  if (!current) {
    r.status = 404;
    r.error = "route \"" + request.route + "\" has no state";
    return r;
  }
  SwitchOptions opt;
  opt.dry_run = request.dry_run;
  opt.skip_verify = request.skip_verify;
  if (request.max_lag_ms) opt.max_lag = std::chrono::milliseconds(*request.max_lag_ms);
  if (request.drain_timeout_ms) {
    opt.drain_timeout = std::chrono::milliseconds(*request.drain_timeout_ms);
  }
  opt.sequence_gap = route->cutover.sequence_gap;
  // Read on the operation's thread (libpq or file I/O), from this config's control database
  // or verify file: where `pgshift verify` with the same config recorded its runs.
  opt.verify_record = [cfg = snap->config](const std::string& name) {
    return read_verify_record(*cfg, name);
  };
  opt.actor = request.actor;
  if (mirrored) opt.mirror = mirror_options(*route);
  std::lock_guard lock(mu_);
  if (running_) {
    r.status = 409;
    r.error =
        "another cutover, rollback or finalize is running on this pgshift; wait for it "
        "(GET /v1/routes/{name}/operation)";
    return r;
  }
  if (thread_.joinable()) thread_.join();  // the previous one has ended
  running_ = true;
  json::object o;
  o["id"] = next_id_++;
  o["route"] = request.route;
  o["kind"] = std::string(to_string(kind));
  o["state"] = "running";
  o["steps"] = json::array();
  latest_[request.route] = o;
  r.operation = o;
  thread_ = std::thread(&CutoverRunner::run, this, request, kind, *endpoints, opt, *current);
  return r;
}

void CutoverRunner::run(proxy::OperationRequest request, SwitchKind kind, SwitchEndpoints endpoints,
                        SwitchOptions options, routing::MigrationState current) {
  auto listener = [&](const StepRecord& step) {
    std::lock_guard lock(mu_);
    latest_[request.route]["steps"].as_array().push_back(to_json(step));
  };
  SwitchOutcome out;
  try {
    const bool mirror_recover =
        kind == SwitchKind::recover && options.mirror && current.phase == config::Phase::sync;
    if (kind == SwitchKind::mirror_start || kind == SwitchKind::mirror_stop || mirror_recover) {
      MirrorStartOptions mo;
      mo.actor = options.actor;
      mo.drain_timeout = options.drain_timeout;
      const auto snap = runtime_.snapshot();
      if (const auto* r = snap->config->find_route(request.route)) {
        mo.tables = r->sync.tables;
        mo.copy_workers = r->sync.mirror.copy_workers;
      }
      out = mirror_recover
                ? run_mirror_recover(request.route, current, endpoints, *fleet_, mo, listener)
            : kind == SwitchKind::mirror_start
                ? run_mirror_start(request.route, current, endpoints, *fleet_, mo, listener)
                : run_mirror_stop(request.route, current, *fleet_, mo, listener);
    } else {
      out = run_switch(kind, request.route, current, endpoints, *fleet_, options, listener);
    }
  } catch (const std::exception& e) {  // a bug: the coordinator catches what the steps throw
    fleet_->abort(request.route, e.what());
    out.route = request.route;
    out.kind = kind;
    out.result = "aborted";
    out.error = e.what();
    proxy::log_error("cutover failed",
                     {proxy::f("route", request.route), proxy::f("error", e.what())});
  }
  std::lock_guard lock(mu_);
  auto& o = latest_[request.route];
  const auto id = o["id"];
  o = to_json(out);
  o["id"] = id;
  running_ = false;
}

std::optional<boost::json::object> CutoverRunner::status(std::string_view route) const {
  std::lock_guard lock(mu_);
  auto it = latest_.find(route);
  if (it == latest_.end()) return std::nullopt;
  return it->second;
}

}  // namespace pgshift::migrate
