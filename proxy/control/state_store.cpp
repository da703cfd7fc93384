#include "proxy/control/state_store.hpp"

#include <algorithm>
#include <cmath>

#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy {

std::uint64_t StateStore::subscribe(Listener listener) {
  std::lock_guard lock(listeners_mu_);
  const auto id = next_listener_++;
  listeners_.emplace(id, std::make_shared<const Listener>(std::move(listener)));
  return id;
}

void StateStore::unsubscribe(std::uint64_t id) {
  std::lock_guard lock(listeners_mu_);
  listeners_.erase(id);
}

void StateStore::notify(const std::string& route, const routing::MigrationState& before,
                        const routing::MigrationState& after) {
  std::vector<std::shared_ptr<const Listener>> listeners;
  {
    std::lock_guard lock(listeners_mu_);
    for (const auto& [id, l] : listeners_) listeners.push_back(l);
  }
  for (const auto& l : listeners) (*l)(route, before, after);
}

routing::MigrationState initial_route_state(const config::Route& route) {
  routing::MigrationState s;
  const double pct = route.read_split.initial_read_percent;
  if (auto p = routing::ReadPercent::from_double(pct)) {
    s.read_percent = *p;
  } else {
    // Config validation keeps this to 0..100; clamp and round rather than refuse to start.
    const double bp = std::clamp(std::round(pct * 100.0), 0.0, 10000.0);
    s.read_percent = *routing::ReadPercent::from_basis_points(static_cast<std::uint64_t>(bp));
    log_warn("initial_read_percent rounded to two decimals",
             {f("route", route.name), f("read_percent", s.read_percent.to_string())});
  }
  return s;
}

}  // namespace pgshift::proxy
