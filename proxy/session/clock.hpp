#pragma once
// The session code's time source, injectable where tests need to drive it. Code that reads
// the time takes the clock as a template parameter defaulting to std::chrono::steady_clock,
// so the product pays nothing (no indirection, no pointer read), and a unit test passes a
// fake clock whose now() it moves by hand instead of waiting (tests/unit/proxy/session/
// clock_test.cpp). The hot and idle handling needs no clock: it counts activity between
// IdleSweeper periods (idle.cpp).
// Thread-safety: pure functions, and poll_until() runs on its executor's thread.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>

namespace pgshift::proxy {

using SteadyClock = std::chrono::steady_clock;

// Milliseconds since `Clock`'s epoch: the time stamps of read-your-writes and of the sync
// lag check (routing/read_your_writes.hpp), which are only compared with each other.
template <typename Clock = SteadyClock>
std::int64_t clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

// A bound on a wait, measured on `Clock`.
template <typename Clock = SteadyClock>
class Deadline {
 public:
  explicit Deadline(typename Clock::duration limit) : at_(Clock::now() + limit) {}
  bool passed() const { return Clock::now() >= at_; }

 private:
  typename Clock::time_point at_;
};

// Asks `done()` every `poll` (a real timer) until it returns true (-> true), or until `limit`
// passed on `Clock` or `stop()` returns true (-> false). For the waits of a session that look
// at shared state (the stale sidecar's wait for the route state to move, fence_retry.cpp).
template <typename Clock = SteadyClock, typename Done, typename Stop>
boost::asio::awaitable<bool> poll_until(boost::asio::any_io_executor ex, Done done, Stop stop,
                                        std::chrono::milliseconds poll,
                                        typename Clock::duration limit) {
  boost::asio::steady_timer timer(ex);
  const Deadline<Clock> deadline(limit);
  for (;;) {
    if (done()) co_return true;
    if (deadline.passed() || stop()) co_return false;
    timer.expires_after(poll);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

}  // namespace pgshift::proxy
