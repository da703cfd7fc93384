#include "proxy/telemetry/pool_report.hpp"

#include <array>
#include <mutex>
#include <optional>
#include <tuple>

#include "pool/pool_shared.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

// PoolStats carries the pool key without its startup parameters, so two pools may share
// route/side/database/user; the n-th of them (in the registry's key order) is told apart
// by n. Pools are never removed from the registry, so a pass can only insert pools.
std::vector<std::string> identities(const std::vector<pool::PoolStats>& pools) {
  std::map<std::string, int> seen;
  std::vector<std::string> out;
  out.reserve(pools.size());
  for (const auto& s : pools) {
    std::string id = s.route + '\0' + s.side + '\0' + s.database + '\0' + s.user;
    const int n = seen[id]++;
    out.push_back(id + '\0' + std::to_string(n));
  }
  return out;
}

auto counters(const pool::PoolStats& s) {
  return std::tie(s.acquires, s.waits, s.connects, s.handovers, s.connect_failures, s.wait_timeouts,
                  s.closed, s.dead, s.health_checks, s.health_check_failures, s.resets,
                  s.reset_failures, s.total_wait_time);
}

bool busy_now(const pool::PoolStats& s) {
  return s.active > 0 || s.waiting > 0 || s.connecting > 0 || s.closing > 0;
}

std::optional<Side> side_of(std::string_view side) {
  if (side == to_string(Side::source)) return Side::source;
  if (side == to_string(Side::target)) return Side::target;
  return std::nullopt;
}

// Raises a counter to `value`. Nothing else increments these series, so the counter's own
// value is the last one fed; a lower `value` (impossible for the registry's counters) is
// ignored rather than breaking monotonicity.
void advance_to(prometheus::Counter& counter, std::int64_t value) {
  const double delta = static_cast<double>(value) - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

}  // namespace

std::vector<pool::PoolStats> PoolActivity::since_last(const std::vector<pool::PoolStats>& now) {
  static const pool::PoolStats kNew;  // a pool not seen before is compared with zeros
  const auto ids = identities(now);
  std::vector<pool::PoolStats> out;
  for (std::size_t i = 0; i < now.size(); ++i) {
    const auto& s = now[i];
    const auto it = last_.find(ids[i]);
    const pool::PoolStats& before = it == last_.end() ? kNew : it->second;
    if (counters(s) != counters(before) || busy_now(s)) out.push_back(s);
    last_[ids[i]] = s;
  }
  return out;
}

void log_pool_stats(std::span<const pool::PoolStats> pools, std::string_view reason) {
  for (const auto& s : pools) {
    log_info("pool stats", {f("reason", reason), f("route", s.route), f("side", s.side),
                            f("stats", pool::to_log_line(s))});
  }
}

PoolLogger::PoolLogger(std::shared_ptr<const pool::PoolRegistry> registry,
                       asio::any_io_executor executor, std::chrono::milliseconds interval)
    : registry_(std::move(registry)), timer_(std::move(executor)), interval_(interval) {}

void PoolLogger::start() {
  stopped_ = false;
  arm();
}

void PoolLogger::stop() {
  stopped_ = true;
  timer_.cancel();
}

void PoolLogger::arm() {
  timer_.expires_after(interval_);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->stopped_) return;
    self->log_active();
    self->arm();
  });
}

void PoolLogger::log_active() {
  if (!registry_) return;
  log_pool_stats(activity_.since_last(registry_->stats()), "interval");
}

void PoolLogger::log_all(std::string_view reason) {
  if (!registry_) return;
  const auto pools = registry_->stats();
  log_pool_stats(pools, reason);
}

void feed_pool_metrics(std::span<const pool::PoolStats> pools) {
  struct Sums {
    std::array<std::int64_t, 2> idle{}, active{}, connects{}, failures{}, handovers{};
  };
  std::map<std::string, Sums> routes;
  for (const auto& s : pools) {
    auto& sums = routes[s.route];
    const auto side = side_of(s.side);
    if (!side) continue;
    const auto i = static_cast<std::size_t>(*side);
    sums.idle[i] += s.idle;
    sums.active[i] += s.active;
    sums.connects[i] += s.connects;
    sums.failures[i] += s.connect_failures;
    sums.handovers[i] += s.handovers;
  }
  // Two scrapes at once must not both add the same delta.
  static std::mutex mu;
  std::lock_guard lock(mu);
  for (const auto& [name, sums] : routes) {
    const RouteMetrics& rm = metrics().route(name);
    for (Side side : {Side::source, Side::target}) {
      const auto i = static_cast<std::size_t>(side);
      rm.servers(side, ServerState::idle).Set(static_cast<double>(sums.idle[i]));
      rm.servers(side, ServerState::active).Set(static_cast<double>(sums.active[i]));
      advance_to(*rm.server_connects_ok[i], sums.connects[i]);
      advance_to(*rm.server_connects_failed[i], sums.failures[i]);
      advance_to(*rm.server_handovers[i], sums.handovers[i]);
    }
  }
}

}  // namespace pgshift::proxy
