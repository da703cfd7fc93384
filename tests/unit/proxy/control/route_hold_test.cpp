// The fleet barrier inside one process: the pause gate's per-route hold and open-transaction
// counters, and LocalFleet (hold / commit / abort on the file store). Real io_contexts and
// threads; every wait has a deadline.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <atomic>
#include <future>
#include <optional>
#include <thread>

#include "proxy/control/fleets.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"

namespace pgshift::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Result = PauseGate::WaitResult;

void spawn_wait(asio::io_context& ioc, PauseGate& gate, std::string route,
                std::optional<Result>& out) {
  asio::co_spawn(
      ioc,
      [&gate, &out, route, ex = ioc.get_executor()]() -> asio::awaitable<void> {
        out = co_await gate.wait_if_paused(ex, Clock::now() + 30s, route);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
}

template <class F>
bool eventually(F cond, Clock::duration limit = 10s) {
  const auto deadline = Clock::now() + limit;
  while (!cond() && Clock::now() < deadline) std::this_thread::yield();
  return cond();
}

TEST(RouteHold, HoldsOnlyItsRouteUntilReleased) {
  PauseGate gate;
  EXPECT_EQ(gate.hold_route("a", 60s), 0);
  EXPECT_TRUE(gate.maybe_paused());
  EXPECT_TRUE(gate.blocks("a"));
  EXPECT_FALSE(gate.blocks("b"));
  asio::io_context ioc;
  std::optional<Result> a, b;
  spawn_wait(ioc, gate, "a", a);
  spawn_wait(ioc, gate, "b", b);
  std::thread t([&] { ioc.run_for(20s); });
  ASSERT_TRUE(eventually([&] { return gate.waiting("a") == 1; }));
  ASSERT_TRUE(eventually([&] { return b.has_value(); }));
  EXPECT_EQ(*b, Result::not_paused);
  EXPECT_TRUE(gate.release_route("a"));
  t.join();
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, Result::resumed);
  EXPECT_FALSE(gate.maybe_paused());
  EXPECT_FALSE(gate.release_route("a")) << "idempotent";
}

TEST(RouteHold, ExpiresByItself) {
  PauseGate gate;
  gate.hold_route("a", 50ms);
  asio::io_context ioc;
  std::optional<Result> a;
  spawn_wait(ioc, gate, "a", a);
  ioc.run_for(10s);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, Result::expired);
  EXPECT_FALSE(gate.route_held("a"));
}

TEST(RouteHold, HoldReportsOpenTransactions) {
  PauseGate gate;
  auto counter = gate.counter("a");
  EXPECT_EQ(gate.counter("a"), counter) << "one counter per route";
  counter->open.fetch_add(2);
  EXPECT_EQ(gate.hold_route("a", 60s), 2);
  EXPECT_EQ(gate.open_transactions("a"), 2);
  EXPECT_EQ(gate.open_transactions("b"), 0);
  gate.release_route("a");
}

config::Config one_route() {
  config::Config cfg;
  config::Route r;
  r.name = "a";
  r.client_database = "a";
  r.source.host = "127.0.0.1";
  cfg.routes.push_back(r);
  return cfg;
}

TEST(LocalFleet, HoldWaitsForOpenTransactionsThenCommitPublishesAndReleases) {
  auto store = std::make_shared<RouteStateStore>("");
  store->load(one_route());
  auto gate = std::make_shared<PauseGate>();
  control::LocalFleet fleet(store, gate);
  auto counter = gate->counter("a");
  counter->open.fetch_add(1);  // a transaction is open
  auto held = std::async(std::launch::async, [&] {
    return fleet.hold(
        {.route = "a", .kind = "cutover", .actor = "test", .drain_timeout = 10s, .deadline = 30s});
  });
  ASSERT_TRUE(eventually([&] { return gate->route_held("a"); }));
  EXPECT_EQ(held.wait_for(50ms), std::future_status::timeout) << "held while a txn is open";
  counter->open.fetch_sub(1);
  const auto h = held.get();
  ASSERT_TRUE(h.ok) << h.error;
  EXPECT_EQ(h.epoch, 0u);
  EXPECT_FALSE(fleet.hold({.route = "a", .kind = "again", .actor = "test"}).ok)
      << "one operation at a time";
  const auto c = fleet.commit("a", routing::SetReadPercent{2500});
  ASSERT_TRUE(c.ok) << c.error;
  EXPECT_EQ(c.state.epoch, 1u);
  EXPECT_EQ(store->snapshot()->find("a")->read_percent.basis_points(), 2500u);
  EXPECT_FALSE(gate->route_held("a"));
  EXPECT_FALSE(fleet.commit("a", routing::SetReadPercent{0}).ok) << "not held any more";
}

TEST(LocalFleet, DrainTimeoutAbortsAndAbortIsIdempotent) {
  auto store = std::make_shared<RouteStateStore>("");
  store->load(one_route());
  auto gate = std::make_shared<PauseGate>();
  control::LocalFleet fleet(store, gate);
  gate->counter("a")->open.fetch_add(1);
  const auto h =
      fleet.hold({.route = "a", .kind = "cutover", .actor = "test", .drain_timeout = 30ms});
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.error.find("still open"), std::string::npos) << h.error;
  EXPECT_FALSE(gate->route_held("a"));
  gate->counter("a")->open.fetch_sub(1);
  ASSERT_TRUE(fleet.hold({.route = "a", .kind = "cutover", .actor = "test"}).ok);
  fleet.abort("a", "test");
  fleet.abort("a", "test");
  EXPECT_FALSE(gate->route_held("a"));
  EXPECT_EQ(store->snapshot()->find("a")->epoch, 0u);
}

// A mirrored route (sync.mode mirror): the hold also waits until the mirror replayed what
// committed, and is refused at once while the mirror is stopped.
TEST(LocalFleet, HoldWaitsForTheMirrorBacklogAndIsRefusedWhileItIsStopped) {
  auto store = std::make_shared<RouteStateStore>("");
  store->load(one_route());
  auto gate = std::make_shared<PauseGate>();
  std::atomic<std::uint64_t> pending{3};
  std::atomic<bool> stopped{false};
  gate->set_backlog_probe([&](std::string_view route) {
    PauseGate::Backlog b;
    if (route != "a") return b;
    b.pending = pending.load();
    if (stopped) b.refusal = "the mirror of route a is stopped";
    return b;
  });
  EXPECT_EQ(gate->drain_state("a").describe(),
            "3 committed transactions not yet replayed by the mirror");
  control::LocalFleet fleet(store, gate);
  auto held = std::async(std::launch::async, [&] {
    return fleet.hold(
        {.route = "a", .kind = "cutover", .actor = "test", .drain_timeout = 10s, .deadline = 30s});
  });
  ASSERT_TRUE(eventually([&] { return gate->route_held("a"); }));
  EXPECT_EQ(held.wait_for(50ms), std::future_status::timeout) << "held while 3 are pending";
  pending = 0;
  const auto h = held.get();
  ASSERT_TRUE(h.ok) << h.error;
  fleet.abort("a", "test");

  stopped = true;
  const auto refused =
      fleet.hold({.route = "a", .kind = "cutover", .actor = "test", .drain_timeout = 10s});
  EXPECT_FALSE(refused.ok);
  EXPECT_NE(refused.error.find("is stopped"), std::string::npos) << refused.error;
  EXPECT_FALSE(gate->route_held("a"));
}

TEST(LocalFleet, MakeFleetPicksTheLocalOneWithoutAControlDatabase) {
  auto store = std::make_shared<RouteStateStore>("");
  const auto cfg = one_route();  // no target: control is file
  store->load(cfg);
  auto gate = std::make_shared<PauseGate>();
  auto fleet = control::make_fleet(cfg, store, gate);
  EXPECT_NE(dynamic_cast<control::LocalFleet*>(fleet.get()), nullptr);
  EXPECT_THROW(control::make_fleet(cfg, nullptr, gate), std::runtime_error);
}

}  // namespace
}  // namespace pgshift::proxy
