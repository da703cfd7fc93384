// PauseGate on real io_contexts: no sleeps; every wait is bounded by a deadline.
#include "proxy/control/pause_gate.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace pgshift::proxy {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Result = PauseGate::WaitResult;

// Spawns one wait on `ioc`, storing its result.
void spawn_wait(asio::io_context& ioc, PauseGate& gate, Clock::time_point deadline,
                std::optional<Result>& out) {
  asio::co_spawn(
      ioc,
      [&gate, &out, deadline, ex = ioc.get_executor()]() -> asio::awaitable<void> {
        out = co_await gate.wait_if_paused(ex, deadline);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
}

// Spins (yielding) until `cond` or the deadline; returns cond().
template <class F>
bool wait_until(F cond, Clock::duration limit = 10s) {
  const auto deadline = Clock::now() + limit;
  while (!cond() && Clock::now() < deadline) std::this_thread::yield();
  return cond();
}

TEST(PauseGate, NotPausedReturnsAtOnce) {
  PauseGate gate;
  asio::io_context ioc;
  std::optional<Result> r;
  spawn_wait(ioc, gate, Clock::now() + 10s, r);
  ioc.run_for(5s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, Result::not_paused);
  EXPECT_FALSE(gate.maybe_paused());
}

TEST(PauseGate, ExpiresByItself) {
  PauseGate gate;
  const auto started = Clock::now();
  auto s = gate.pause(50ms);
  EXPECT_TRUE(s.paused);
  EXPECT_EQ(s.remaining, 50ms);
  asio::io_context ioc;
  std::optional<Result> r;
  spawn_wait(ioc, gate, Clock::now() + 30s, r);
  ioc.run_for(10s);  // returns as soon as the waiter is done
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, Result::expired);
  EXPECT_GE(Clock::now() - started, 50ms);
  EXPECT_LT(Clock::now() - started, 5s);
  EXPECT_FALSE(gate.status().paused);
  EXPECT_EQ(gate.status().waiting, 0u);
}

TEST(PauseGate, ResumeWakesWaitersOnEveryThread) {
  PauseGate gate;
  gate.pause(60s);
  constexpr int kContexts = 3, kPerContext = 4;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<std::optional<Result>> results(kContexts * kPerContext);
  for (int c = 0; c < kContexts; ++c) {
    contexts.push_back(std::make_unique<asio::io_context>(1));
    for (int i = 0; i < kPerContext; ++i) {
      spawn_wait(*contexts.back(), gate, Clock::now() + 60s, results[c * kPerContext + i]);
    }
  }
  std::vector<std::thread> threads;
  for (auto& ctx : contexts) threads.emplace_back([&ctx]() { ctx->run_for(30s); });
  ASSERT_TRUE(wait_until([&]() { return gate.status().waiting == kContexts * kPerContext; }));
  const auto released_at = Clock::now();
  auto before = gate.resume();
  EXPECT_TRUE(before.paused);
  EXPECT_EQ(before.waiting, std::size_t{kContexts * kPerContext});
  for (auto& t : threads) t.join();  // each run_for returns when its waiters are done
  EXPECT_LT(Clock::now() - released_at, 5s);
  for (const auto& r : results) {
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, Result::resumed);
  }
  EXPECT_EQ(gate.status().waiting, 0u);
  EXPECT_FALSE(gate.maybe_paused());
}

TEST(PauseGate, CallerDeadlineEndsTheWaitWhilePaused) {
  PauseGate gate;
  gate.pause(60s);
  asio::io_context ioc;
  std::optional<Result> r;
  spawn_wait(ioc, gate, Clock::now() + 30ms, r);
  ioc.run_for(10s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, Result::deadline);
  EXPECT_TRUE(gate.status().paused);
  std::optional<Result> past;
  spawn_wait(ioc, gate, Clock::now() - 1ms, past);
  ioc.restart();
  ioc.run_for(10s);
  ASSERT_TRUE(past);
  EXPECT_EQ(*past, Result::deadline);
  gate.resume();
}

TEST(PauseGate, ShorterRepauseRearmsHeldWaiters) {
  PauseGate gate;
  gate.pause(60s);
  asio::io_context ioc(1);
  std::optional<Result> r;
  spawn_wait(ioc, gate, Clock::now() + 60s, r);
  // Once the waiter is held, replace the pause by a 20 ms one: it must not sleep 60 s.
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        asio::steady_timer t(ioc);
        while (gate.status().waiting == 0) {
          t.expires_after(1ms);
          co_await t.async_wait(asio::use_awaitable);
        }
        gate.pause(20ms);
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  const auto started = Clock::now();
  ioc.run_for(20s);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, Result::expired);
  EXPECT_LT(Clock::now() - started, 10s);
}

TEST(PauseGate, TimeoutIsClampedToTheMaximum) {
  PauseGate gate;
  auto s = gate.pause(std::chrono::hours(1));
  EXPECT_EQ(s.remaining, PauseGate::kMaxTimeout);
  EXPECT_LE(gate.status().remaining, PauseGate::kMaxTimeout);
  auto before = gate.resume();
  EXPECT_TRUE(before.paused);
  EXPECT_FALSE(gate.resume().paused);  // idempotent
}

TEST(PauseGate, DestroyedWaiterUnregisters) {
  PauseGate gate;
  gate.pause(60s);
  {
    asio::io_context ioc;
    std::optional<Result> r;
    spawn_wait(ioc, gate, Clock::now() + 60s, r);
    ioc.poll();  // starts the wait; it is now held
    EXPECT_EQ(gate.status().waiting, 1u);
    EXPECT_FALSE(r);
  }  // the io_context (and the suspended waiter with it) is destroyed here
  EXPECT_EQ(gate.status().waiting, 0u);
  gate.resume();  // must not touch the dead waiter
}

}  // namespace
}  // namespace pgshift::proxy
