#include "proxy/migrate/lag_monitor.hpp"

#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <array>
#include <deque>
#include <limits>
#include <optional>

#include "proxy/control/route_state_store.hpp"
#include "proxy/migrate/sync_common.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::migrate {

namespace {

using pgclient::Connection;
using proxy::f;

// pgshift_sync_state's values: a bounded label set.
enum class SyncState { not_started, copying, streaming, stopped, error, down };
constexpr std::array<SyncState, 6> kStates{SyncState::not_started, SyncState::copying,
                                           SyncState::streaming,   SyncState::stopped,
                                           SyncState::error,       SyncState::down};
std::string_view to_string(SyncState s) {
  switch (s) {
    case SyncState::not_started:
      return "not_started";
    case SyncState::copying:
      return "copying";
    case SyncState::streaming:
      return "streaming";
    case SyncState::stopped:
      return "stopped";
    case SyncState::error:
      return "error";
    case SyncState::down:
      return "down";
  }
  return "unknown";
}

// The migrate component's metrics, declared here once (docs/metrics.md lists them).
struct SyncMetrics {
  prometheus::Family<prometheus::Gauge>& lag;
  prometheus::Family<prometheus::Gauge>& state;
  static SyncMetrics& get() {
    static SyncMetrics m{
        prometheus::BuildGauge()
            .Name("pgshift_sync_lag_seconds")
            .Help("Logical sync: seconds since the newest lag marker the non-authoritative side "
                  "has applied was written (+Inf before the first).")
            .Register(proxy::metrics().registry()),
        prometheus::BuildGauge()
            .Name("pgshift_sync_state")
            .Help("Logical sync: 1 for the subscription's current state.")
            .Register(proxy::metrics().registry())};
    return m;
  }
};

constexpr const char* kUpsert =
    "INSERT INTO pgshift.heartbeat (route, origin, seq, origin_time) VALUES ($1, $2, 1, now()) "
    "ON CONFLICT (route, origin) DO UPDATE SET seq = pgshift.heartbeat.seq + 1, "
    "origin_time = now() RETURNING seq";

// The other side's newest marker and its subscription, in one round trip.
constexpr const char* kObserve =
    "SELECT (SELECT seq FROM pgshift.heartbeat WHERE route = $1 AND origin = $2), "
    " (SELECT (extract(epoch FROM origin_time) * 1000)::bigint FROM pgshift.heartbeat "
    "  WHERE route = $1 AND origin = $2), "
    " s.subenabled, "
    " (SELECT count(*) FROM pg_subscription_rel r WHERE r.srsubid = s.oid AND "
    "  r.srsubstate <> 'r'), "
    " EXISTS (SELECT 1 FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.relid IS "
    "  NULL AND st.pid IS NOT NULL), "
    " (SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats ss WHERE "
    "  ss.subid = s.oid) "
    "FROM (SELECT 1) one LEFT JOIN pg_subscription s ON s.subname = $3";

pgclient::ConnInfo monitor_info(pgclient::ConnInfo info) {
  info.connect_timeout_s = 2;
  info.options = "-c statement_timeout=2000 -c lock_timeout=1000";
  info.application_name = "pgshift-lag-monitor";
  return info;
}

// Everything the loop keeps between ticks.
struct Tick {
  std::optional<Connection> auth, other;
  std::deque<std::pair<long long, std::int64_t>> sent;  // (seq, steady ms before the write)
  std::int64_t next_write = 0;
  std::optional<routing::Side> side;
  long long errors_seen = -1;
  SyncState state = SyncState::not_started;
};

void ensure(std::optional<Connection>& c, const pgclient::ConnInfo& info) {
  if (!c || !c->ok()) c = Connection::connect(monitor_info(info));
}

}  // namespace

LagMonitor::LagMonitor(std::shared_ptr<proxy::Runtime> runtime, std::string route)
    : runtime_(std::move(runtime)), route_(std::move(route)) {}

LagMonitor::~LagMonitor() {
  stop();
}

void LagMonitor::start() {
  SyncMetrics::get();
  thread_ = std::thread([this] { run(); });
}

void LagMonitor::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool LagMonitor::wait_for(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopping_; });
}

void LagMonitor::run() {
  auto& m = SyncMetrics::get();
  auto& lag_gauge = m.lag.Add({{"route", route_}});
  std::array<prometheus::Gauge*, kStates.size()> state_gauges{};
  for (std::size_t i = 0; i < kStates.size(); ++i) {
    state_gauges[i] = &m.state.Add({{"route", route_}, {"state", std::string(to_string(kStates[i]))}});
  }
  Tick t;
  std::string last_error;
  proxy::log_info("lag monitor started", {f("route", route_)});
  for (;;) {
    auto snap = runtime_->snapshot();
    const proxy::RouteRuntime* rr = nullptr;
    for (const auto& r : snap->routes) {
      if (r.route->name == route_) rr = &r;
    }
    std::chrono::milliseconds poll(500);
    if (rr && rr->sync) {
      const auto& route = *rr->route;
      poll = std::clamp(route.sync.heartbeat / 10, std::chrono::milliseconds(10),
                        std::chrono::milliseconds(100));
      routing::Side auth = routing::Side::source;
      if (runtime_->states) {
        auto states = runtime_->states->snapshot();
        if (auto* st = states->find(route_)) auth = routing::authoritative_side(*st);
      }
      if (t.side != auth) {  // a cutover or rollback flipped the direction
        t = Tick{};
        t.side = auth;
        rr->sync->reset();
      }
      const bool forward = auth == routing::Side::source;
      const std::string origin = forward ? "source" : "target";
      const std::string sub = subscription_name(route_, forward ? Direction::forward
                                                                : Direction::reverse);
      try {
        const SyncSides sides = sync_sides(*snap->config, route_);
        const auto& auth_info = forward ? sides.source : sides.target;
        const auto& other_info = forward ? sides.target : sides.source;
        std::string error;
        const std::int64_t now = steady_ms();
        if (now >= t.next_write) {
          t.next_write = now + route.sync.heartbeat.count();
          try {
            ensure(t.auth, auth_info);
            const std::int64_t before = steady_ms();
            auto r = t.auth->exec(kUpsert, {route_, origin});
            t.sent.emplace_back(std::stoll(std::string(r.get(0, 0))), before);
            if (t.sent.size() > 100000) t.sent.pop_front();
          } catch (const pgclient::Error& e) {
            if (e.sqlstate() != "42P01") t.auth.reset();  // 42P01: sync not set up yet
            error = e.what();
          }
        }
        try {
          ensure(t.other, other_info);
          auto r = t.other->exec(kObserve, {route_, origin, sub});
          if (r.is_null(0, 2)) {
            t.state = SyncState::not_started;
          } else if (r.get(0, 2) != "t") {
            t.state = SyncState::stopped;
          } else if (r.get(0, 3) != "0") {
            t.state = SyncState::copying;
          } else {
            const long long errors = r.is_null(0, 5) ? 0 : std::stoll(std::string(r.get(0, 5)));
            const bool new_errors = t.errors_seen >= 0 && errors > t.errors_seen;
            t.errors_seen = errors;
            t.state = (r.get(0, 4) == "t" && !new_errors) ? SyncState::streaming : SyncState::error;
            if (!r.is_null(0, 0)) {
              // The newest of our markers at or below the visible one was applied, and with it
              // every commit acknowledged before we wrote it.
              const long long visible = std::stoll(std::string(r.get(0, 0)));
              std::optional<std::int64_t> applied;
              while (!t.sent.empty() && t.sent.front().first <= visible) {
                applied = t.sent.front().second;
                t.sent.pop_front();
              }
              if (applied) rr->sync->publish(*applied, std::stoll(std::string(r.get(0, 1))));
            }
          }
        } catch (const pgclient::Error& e) {
          if (e.sqlstate() == "42P01") {
            t.state = SyncState::not_started;
          } else {
            t.other.reset();
            t.state = SyncState::down;
            error = e.what();
          }
        }
        if (!error.empty() && t.state != SyncState::not_started && !t.auth) t.state = SyncState::down;
        if (error != last_error) {
          if (!error.empty()) {
            proxy::log_warn("lag monitor: database error; lag grows until it recovers",
                            {f("route", route_), f("error", error)});
          }
          last_error = error;
        }
      } catch (const UsageError& e) {
        if (last_error != e.what()) proxy::log_error("lag monitor", {f("route", route_), f("error", e.what())});
        last_error = e.what();
        t.state = SyncState::down;
        poll = std::chrono::seconds(5);
      }
      const auto lag = rr->sync->lag_ms(steady_ms());
      lag_gauge.Set(lag == std::numeric_limits<std::int64_t>::max()
                        ? std::numeric_limits<double>::infinity()
                        : static_cast<double>(lag) / 1000.0);
      for (std::size_t i = 0; i < kStates.size(); ++i) state_gauges[i]->Set(kStates[i] == t.state);
    }
    snap.reset();
    if (!wait_for(poll)) break;
  }
  proxy::log_info("lag monitor stopped", {f("route", route_)});
}

LagMonitors::LagMonitors(std::shared_ptr<proxy::Runtime> runtime) {
  auto snap = runtime->snapshot();
  for (const auto& rr : snap->routes) {
    if (!rr.sync) continue;
    monitors_.push_back(std::make_unique<LagMonitor>(runtime, rr.route->name));
    monitors_.back()->start();
  }
}

LagMonitors::~LagMonitors() {
  stop();
}

void LagMonitors::stop() {
  for (auto& m : monitors_) m->stop();
  monitors_.clear();
}

}  // namespace pgshift::migrate
