#include "proxy/control/route_state_store.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"
#include "routing/state_json.hpp"

namespace pgshift::proxy {
namespace {

std::int64_t system_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// nullopt: the file does not exist. Throws StateFileError when it exists but cannot be read.
std::optional<std::string> read_state_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) return std::nullopt;
  if (ec) throw StateFileError("state file " + path + ": " + ec.message());
  if (!std::filesystem::is_regular_file(status)) {
    throw StateFileError("state file " + path + ": not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw StateFileError("state file " + path + ": cannot open: " + std::strerror(errno));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw StateFileError("state file " + path + ": cannot read");
  return ss.str();
}

}  // namespace

RouteStateStore::RouteStateStore(std::string path, Clock clock)
    : path_(std::move(path)), clock_(clock ? std::move(clock) : Clock(system_now_ms)) {}

void RouteStateStore::load(const config::Config& cfg) {
  std::lock_guard write_lock(write_mu_);
  RouteStates known;
  std::optional<std::string> text;
  if (!path_.empty()) text = read_state_file(path_);
  if (text) {
    auto parsed = routing::parse_state_file(*text);
    if (!parsed) {
      throw StateFileError("state file " + path_ + " is not usable: " + parsed.message +
                           " (fix or remove the file; removing it resets every route to "
                           "its configured initial state)");
    }
    for (const auto& [name, state] : parsed->routes) known.routes.emplace(name, state);
    log_info("route states loaded", {f("state_file", path_), f("routes", known.routes.size())});
  } else if (!path_.empty()) {
    log_info("no state file yet: routes start from their configured initial state",
             {f("state_file", path_)});
  }
  retired_.clear();
  merge_locked(cfg, known, "startup");
}

void RouteStateStore::reconcile(const config::Config& cfg) {
  std::lock_guard write_lock(write_mu_);
  auto current = snapshot();
  merge_locked(cfg, *current, "reload");
}

void RouteStateStore::merge_locked(const config::Config& cfg, const RouteStates& known,
                                   std::string_view why) {
  auto next = std::make_shared<RouteStates>();
  for (const auto& r : cfg.routes) {
    if (const auto* s = known.find(r.name)) {
      next->routes.emplace(r.name, *s);
      continue;
    }
    auto node = retired_.extract(r.name);
    if (node.empty()) {
      next->routes.emplace(r.name, initial_route_state(r));
      continue;
    }
    // Back in the configuration: it resumes where it was, never from epoch 0 (which would
    // let an older state win over the one sessions acted on).
    const routing::MigrationState& state = node.mapped();
    log_info(
        "route state restored: the route is back in the configuration",
        {f("route", r.name), f("epoch", state.epoch), f("phase", routing::phase_name(state.phase)),
         f("read_percent", state.read_percent.to_string()), f("state_file", path_),
         f("when", why)});
    log_info("audit: route state restored", {f("audit", "restore"), f("who", "config"),
                                             f("route", r.name), f("epoch", state.epoch)});
    next->routes.emplace(r.name, state);
  }
  for (const auto& [name, state] : known.routes) {
    if (next->find(name) || retired_.contains(name)) continue;
    log_warn(
        "route state retired: the route is no longer in the configuration; its state is "
        "kept and resumes if the route comes back",
        {f("route", name), f("epoch", state.epoch), f("phase", routing::phase_name(state.phase)),
         f("read_percent", state.read_percent.to_string()), f("state_file", path_),
         f("when", why)});
    log_info("audit: route state retired",
             {f("audit", "retire"), f("who", "config"), f("route", name), f("epoch", state.epoch)});
    retired_.insert_or_assign(name, state);
  }
  publish(std::move(next));
}

void RouteStateStore::refresh_soon() {
  if (path_.empty()) return;
  std::lock_guard write_lock(write_mu_);
  std::optional<std::string> text;
  try {
    text = read_state_file(path_);
  } catch (const StateFileError& e) {
    log_warn("state file not re-read", {f("state_file", path_), f("error", e.what())});
    return;
  }
  if (!text) return;
  auto parsed = routing::parse_state_file(*text);
  if (!parsed) {
    log_warn("state file not re-read", {f("state_file", path_), f("error", parsed.message)});
    return;
  }
  auto current = snapshot();
  auto next = std::make_shared<RouteStates>(*current);
  std::vector<std::pair<std::string, routing::MigrationState>> moved;  // route, before
  for (const auto& [name, saved] : parsed->routes) {
    auto it = next->routes.find(name);
    if (it == next->routes.end() || saved.epoch <= it->second.epoch) continue;
    moved.emplace_back(name, it->second);
    it->second = saved;
  }
  if (moved.empty()) return;
  publish(next);
  for (const auto& [name, before] : moved) {
    log_info("route state re-read from the state file",
             {f("route", name), f("state_file", path_), f("epoch", next->find(name)->epoch)});
    notify(name, before, *next->find(name));
  }
}

StateChangeResult RouteStateStore::apply(std::string_view route,
                                         const routing::StateChange& change) {
  std::lock_guard write_lock(write_mu_);
  return apply_locked(route, change, std::nullopt);
}

void RouteStateStore::change(ChangeRequest request, Done done) {
  StateChangeResult result;
  {
    std::lock_guard write_lock(write_mu_);
    result = apply_locked(request.route, request.change, request.expected_epoch);
  }
  if (result.ok()) {
    log_info("audit: route state change",
             {f("audit", "change"), f("who", request.actor), f("route", request.route),
              f("old_epoch", result.before.epoch), f("epoch", result.after.epoch),
              f("changed", result.changed() ? "true" : "false")});
  }
  done(std::move(result));
}

ControlStatus RouteStateStore::control_status() const {
  ControlStatus s;
  s.mode = "file";
  s.connected = true;
  return s;
}

std::vector<MemberView> RouteStateStore::members() const {
  MemberView self;
  self.id = "local";
  self.self = true;
  for (const auto& [name, state] : snapshot()->routes) {
    self.routes.push_back(name);
    self.applied.emplace(name, state.epoch);
  }
  return {self};
}

// Requires write_mu_.
StateChangeResult RouteStateStore::apply_locked(std::string_view route,
                                                const routing::StateChange& change,
                                                std::optional<std::uint64_t> expected_epoch) {
  StateChangeResult result;
  {
    auto current = snapshot();
    const auto* before = current->find(route);
    if (!before) {
      result.error = StateChangeError::unknown_route;
      result.message = "unknown route \"" + std::string(route) + "\"";
      return result;
    }
    result.before = result.after = *before;
    if (expected_epoch && *expected_epoch != before->epoch) {
      result.error = StateChangeError::conflict;
      result.message = "route \"" + std::string(route) + "\" is at epoch " +
                       std::to_string(before->epoch) + ", not " + std::to_string(*expected_epoch) +
                       "; read it again and retry";
      return result;
    }
    auto next_state = routing::apply(*before, change, clock_());
    if (!next_state) {
      result.error = StateChangeError::invalid;
      result.message = next_state.message;
      return result;
    }
    if (next_state->epoch == before->epoch) return result;  // same value: nothing to do

    auto next = std::make_shared<RouteStates>(*current);
    next->routes.insert_or_assign(std::string(route), *next_state);
    if (!path_.empty()) {
      routing::StateFile file;
      for (const auto& [name, state] : next->routes) file.routes.emplace(name, state);
      // Retired routes stay in the file: a restart resumes them like a reload does.
      for (const auto& [name, state] : retired_) file.routes.emplace(name, state);
      // Persist first: a state published but not saved could be undone by a restart after
      // sessions have acted on it.
      if (auto err = write_file_atomically(path_, routing::serialize_state_file(file));
          !err.empty()) {
        result.error = StateChangeError::persist_failed;
        result.message = "could not save the state file: " + err;
        metrics().errors(ErrorKind::state_persist).Increment();
        log_error("route state change not saved; nothing changed",
                  {f("route", route), f("state_file", path_), f("error", err)});
        return result;
      }
    }
    result.after = *next_state;
    publish(std::move(next));
    metrics().state_changes(std::string(route)).Increment();
    log_info("route state changed",
             {f("route", route), f("epoch", result.after.epoch),
              f("phase", routing::phase_name(result.after.phase)),
              f("old_phase", routing::phase_name(result.before.phase)),
              f("read_percent", result.after.read_percent.to_string()),
              f("old_read_percent", result.before.read_percent.to_string())});
    // Still under write_mu_, so listeners see changes in epoch order (a gauge never goes
    // back to an older value); they may read snapshot() but must not call apply().
    notify(std::string(route), result.before, result.after);
  }
  return result;
}

}  // namespace pgshift::proxy
