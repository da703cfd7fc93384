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

// Everything the loop keeps between ticks, and the two halves of a tick.
struct Tick {
  std::optional<Connection> auth, other;
  std::deque<std::pair<long long, std::int64_t>> sent;  // (seq, steady ms before the write)
  std::int64_t next_write = 0;
  std::optional<routing::Side> side;
  long long errors_seen = -1;
  std::int64_t last_error_ms = 0;  // steady time errors were last seen to increase
  SyncState state = SyncState::not_started;
  std::string error;  // of this tick ("" = none)

  static void ensure(std::optional<Connection>& c, const pgclient::ConnInfo& info) {
    if (!c || !c->ok()) c = Connection::connect(monitor_info(info));
  }

  // Upserts the marker on the authoritative side when it is due.
  void write_marker(const pgclient::ConnInfo& info, const std::string& route,
                    const std::string& origin, std::chrono::milliseconds heartbeat) {
    const std::int64_t now = steady_ms();
    if (now < next_write) return;
    next_write = now + heartbeat.count();
    try {
      ensure(auth, info);
      const std::int64_t before = steady_ms();
      auto r = auth->exec(kUpsert, {route, origin});
      sent.emplace_back(std::stoll(std::string(r.get(0, 0))), before);
      if (sent.size() > 100000) sent.pop_front();
    } catch (const pgclient::Error& e) {
      if (e.sqlstate() != "42P01") auth.reset();  // 42P01: sync not set up yet
      error = e.what();
    }
  }

  // Reads the other side's newest marker and subscription state; publishes the position.
  void observe(const pgclient::ConnInfo& info, const std::string& route, const std::string& origin,
               const std::string& subscription, routing::SyncPosition& position) {
    try {
      ensure(other, info);
      auto r = other->exec(kObserve, {route, origin, subscription});
      if (r.is_null(0, 2)) {
        state = SyncState::not_started;
      } else if (r.get(0, 2) != "t") {
        state = SyncState::stopped;
      } else if (r.get(0, 3) != "0") {
        state = SyncState::copying;  // a table not ready yet may still miss rows
      } else {
        // An apply error makes the worker exit and retry (wal_retrieve_retry_interval, 5 s):
        // "error" while the worker is gone or errors were counted in the last 10 s.
        const long long errors = r.is_null(0, 5) ? 0 : std::stoll(std::string(r.get(0, 5)));
        if (errors_seen >= 0 && errors > errors_seen) last_error_ms = steady_ms();
        errors_seen = errors;
        const bool recent = last_error_ms != 0 && steady_ms() - last_error_ms < 10000;
        state = (r.get(0, 4) == "t" && !recent) ? SyncState::streaming : SyncState::error;
        if (!r.is_null(0, 0))
          publish(std::stoll(std::string(r.get(0, 0))), std::stoll(std::string(r.get(0, 1))),
                  position);
      }
    } catch (const pgclient::Error& e) {
      if (e.sqlstate() == "42P01") {
        state = SyncState::not_started;
      } else {
        other.reset();
        state = SyncState::down;
        error = e.what();
      }
    }
    if (!error.empty() && state != SyncState::not_started && !auth) state = SyncState::down;
  }

  // The newest of our markers at or below the visible one was applied, and with it every
  // commit acknowledged before we wrote it. (Markers of other sidecars have other seqs.)
  void publish(long long visible, std::int64_t origin_ms, routing::SyncPosition& position) {
    std::optional<std::int64_t> applied;
    while (!sent.empty() && sent.front().first <= visible) {
      applied = sent.front().second;
      sent.pop_front();
    }
    if (applied) position.publish(*applied, origin_ms);
  }
};

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
    state_gauges[i] =
        &m.state.Add({{"route", route_}, {"state", std::string(to_string(kStates[i]))}});
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
      const std::string sub =
          subscription_name(route_, forward ? Direction::forward : Direction::reverse);
      t.error.clear();
      try {
        const SyncSides sides = sync_sides(*snap->config, route_);
        t.write_marker(forward ? sides.source : sides.target, route_, origin, route.sync.heartbeat);
        t.observe(forward ? sides.target : sides.source, route_, origin, sub, *rr->sync);
      } catch (const UsageError& e) {
        t.error = e.what();
        t.state = SyncState::down;
        poll = std::chrono::seconds(5);
      } catch (const std::exception& e) {
        // Anything unexpected (a value that does not parse...): this thread must not die,
        // and nothing is published, so the lag grows. Start over with new connections.
        const auto side = t.side;
        t = Tick{};
        t.side = side;
        t.error = e.what();
        t.state = SyncState::down;
      }
      if (t.error != last_error && !t.error.empty()) {
        proxy::log_warn("lag monitor: cannot measure; the lag grows until this is fixed",
                        {f("route", route_), f("error", t.error)});
      }
      last_error = t.error;
      const auto lag = rr->sync->lag_ms(steady_ms());
      lag_gauge.Set(lag == std::numeric_limits<std::int64_t>::max()
                        ? std::numeric_limits<double>::infinity()
                        : static_cast<double>(lag) / 1000.0);
      for (std::size_t i = 0; i < kStates.size(); ++i) {
        state_gauges[i]->Set(kStates[i] == t.state ? 1 : 0);
      }
    }
    snap.reset();
    if (!wait_for(poll)) break;
  }
  proxy::log_info("lag monitor stopped", {f("route", route_)});
}

LagMonitors::LagMonitors(std::shared_ptr<proxy::Runtime> runtime) {
  auto snap = runtime->snapshot();
  for (const auto& rr : snap->routes) {
    // The mirror publishes its own position (proxy/mirror/replay.cpp).
    if (!rr.sync || rr.route->sync.mode != config::SyncMode::logical) continue;
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
