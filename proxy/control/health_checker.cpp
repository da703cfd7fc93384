#include "proxy/control/health_checker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/runtime/route_select.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

using routing::Side;

std::int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string address_of(const config::Upstream& u) {
  return (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) + ":" +
         std::to_string(u.port);
}

// Probes one upstream and records the result. Holds the snapshot so `side` stays valid.
asio::awaitable<void> check(std::shared_ptr<RouteHealth> entry, Side side,
                            [[maybe_unused]] SnapshotPtr snap, const config::Upstream* upstream,
                            std::shared_ptr<asio::ssl::context> tls) {
  UpstreamHealth& health = entry->side(side);
  std::string error;
  std::string method = "tcp";
  try {
    // A login needs credentials and a database name of the route's own.
    std::string why;
    std::shared_ptr<const pool::UpstreamParams> params;
    if (!upstream->passthrough && !upstream->user.empty() && !upstream->database.empty()) {
      params = make_upstream_params(*upstream, tls, ClientIdentity{}, why);
    }
    if (params) {
      method = "login";
      auto p = *params;
      p.startup_params.emplace_back("application_name", "pgshift-health");
      error = co_await probe_login(p);
    } else {
      error = co_await probe_tcp(upstream->host, upstream->port, upstream->connect_timeout);
    }
  } catch (const std::exception& e) {
    error = std::string("health check failed: ") + e.what();
  }
  health.in_flight = false;
  const bool ok = error.empty();
  auto& m = metrics();
  m.health_checks(entry->name, side, ok ? HealthCheckResult::ok : HealthCheckResult::failed)
      .Increment();
  m.upstream_healthy(entry->name, side).Set(ok ? 1 : 0);
  if (health.record(ok, address_of(*upstream), method, error, now_ms())) {
    // Logged and counted once per change, not once per probe.
    m.health_changes(entry->name, side, ok).Increment();
    if (ok) {
      log_info("upstream healthy", {f("route", entry->name), f("side", routing::to_string(side)),
                                    f("address", address_of(*upstream)), f("check", method)});
    } else {
      log_warn("upstream unhealthy",
               {f("route", entry->name), f("side", routing::to_string(side)),
                f("address", address_of(*upstream)), f("check", method), f("error", error)});
    }
  }
}

}  // namespace

UpstreamHealth::Report UpstreamHealth::report() const {
  std::lock_guard lock(mu_);
  return report_;
}

bool UpstreamHealth::record(bool ok, std::string address, std::string method, std::string error,
                            std::int64_t at_ms) {
  std::lock_guard lock(mu_);
  const bool changed = !report_.checked || report_.healthy != ok;
  report_.checked = true;
  report_.healthy = ok;
  report_.address = std::move(address);
  report_.method = std::move(method);
  report_.last_error = std::move(error);
  report_.last_check_ms = at_ms;
  if (changed) report_.since_ms = at_ms;
  healthy_.store(ok, std::memory_order_release);
  return changed;
}

HealthChecker::HealthChecker(Runtime& runtime, asio::any_io_executor executor, Options options)
    : runtime_(runtime), executor_(executor), options_(options), timer_(executor) {}

void HealthChecker::start() {
  asio::co_spawn(
      executor_, [self = shared_from_this()]() { return self->loop(); }, asio::detached);
}

void HealthChecker::stop() {
  stopped_.store(true);
  asio::post(executor_, [self = shared_from_this()]() { self->timer_.cancel(); });
}

RouteHealthPtr HealthChecker::route(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = routes_.find(name);
  return it == routes_.end() ? nullptr : it->second;
}

std::vector<RouteHealthPtr> HealthChecker::routes() const {
  std::lock_guard lock(mu_);
  std::vector<RouteHealthPtr> out;
  for (const auto& [name, h] : routes_) out.push_back(h);
  return out;
}

void HealthChecker::start_round(const SnapshotPtr& snap) {
  std::vector<std::shared_ptr<RouteHealth>> entries;
  {
    // Follow reloads: new routes get an entry, removed ones lose theirs (sessions that
    // still hold one keep a frozen copy, which is harmless).
    std::lock_guard lock(mu_);
    std::map<std::string, std::shared_ptr<RouteHealth>, std::less<>> next;
    for (const auto& rr : snap->routes) {
      auto it = routes_.find(rr.route->name);
      next.emplace(rr.route->name, it != routes_.end()
                                       ? it->second
                                       : std::make_shared<RouteHealth>(rr.route->name));
    }
    routes_.swap(next);
    for (const auto& rr : snap->routes) entries.push_back(routes_.at(rr.route->name));
  }
  for (std::size_t i = 0; i < snap->routes.size(); ++i) {
    const auto& rr = snap->routes[i];
    auto& entry = entries[i];
    if (!entry->source.in_flight) {
      entry->source.in_flight = true;
      asio::co_spawn(executor_, check(entry, Side::source, snap, &rr.route->source, rr.source_tls),
                     asio::detached);
    }
    if (rr.route->target && !entry->target.in_flight) {
      entry->target.in_flight = true;
      asio::co_spawn(executor_, check(entry, Side::target, snap, &*rr.route->target, rr.target_tls),
                     asio::detached);
    }
  }
}

asio::awaitable<void> HealthChecker::loop() {
  while (!stopped_.load()) {
    start_round(runtime_.snapshot());
    timer_.expires_after(options_.interval);
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace pgshift::proxy
