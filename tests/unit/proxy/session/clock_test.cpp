// proxy/session/clock: the session code's clock seam, driven by a fake clock, so a bound of
// seconds is checked without waiting for it.
#include "proxy/session/clock.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>

namespace pgshift::proxy {
namespace {

// A clock that moves only when the test says so.
struct FakeClock {
  using duration = std::chrono::steady_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<FakeClock>;
  static constexpr bool is_steady = true;
  static time_point now() { return current; }
  static void advance(duration d) { current += d; }
  static inline time_point current{};
};

using std::chrono::milliseconds;

TEST(SessionClockTest, DeadlinePassesWhenTheClockReachesIt) {
  const Deadline<FakeClock> d(std::chrono::seconds(1));
  EXPECT_FALSE(d.passed());
  FakeClock::advance(milliseconds(999));
  EXPECT_FALSE(d.passed());
  FakeClock::advance(milliseconds(1));
  EXPECT_TRUE(d.passed());
}

TEST(SessionClockTest, ClockMillisecondsFollowTheClock) {
  const std::int64_t before = clock_ms<FakeClock>();
  FakeClock::advance(milliseconds(250));
  EXPECT_EQ(clock_ms<FakeClock>() - before, 250);
}

// The stale sidecar's wait for the route state to move (fence_retry.cpp) gives up after its
// bound: 1.5 s of fake time pass in a few 1 ms polls.
TEST(SessionClockTest, PollUntilGivesUpAtItsBoundOnTheFakeClock) {
  boost::asio::io_context io;
  int polls = 0;
  auto done = [&] {
    ++polls;
    FakeClock::advance(milliseconds(500));  // each look at the state "takes" 500 ms
    return false;
  };
  auto stop = [] { return false; };
  bool result = true;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        result = co_await poll_until<FakeClock>(io.get_executor(), done, stop, milliseconds(1),
                                                milliseconds(1500));
      },
      boost::asio::detached);
  io.run();
  EXPECT_FALSE(result);
  EXPECT_EQ(polls, 3);  // at 500, 1000 and 1500 ms: the third finds the bound passed
}

TEST(SessionClockTest, PollUntilEndsAsSoonAsDoneOrStopped) {
  boost::asio::io_context io;
  int polls = 0;
  bool moved = false, stopped = true;
  boost::asio::co_spawn(
      io,
      [&]() -> boost::asio::awaitable<void> {
        moved = co_await poll_until<FakeClock>(
            io.get_executor(), [&] { return ++polls == 2; }, [] { return false; }, milliseconds(1),
            std::chrono::hours(1));
        stopped = co_await poll_until<FakeClock>(
            io.get_executor(), [] { return false; }, [] { return true; }, milliseconds(1),
            std::chrono::hours(1));
      },
      boost::asio::detached);
  io.run();
  EXPECT_TRUE(moved);
  EXPECT_EQ(polls, 2);
  EXPECT_FALSE(stopped);
}

}  // namespace
}  // namespace pgshift::proxy
