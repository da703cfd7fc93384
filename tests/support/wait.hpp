#pragma once
// Waiting for a condition, never for a fixed time: poll the predicate with a short backoff
// (1 ms doubling up to 50 ms) until it holds or the deadline passes.
#include <chrono>
#include <functional>
#include <string_view>

namespace pgshift::test {

using SteadyClock = std::chrono::steady_clock;

// True as soon as predicate() returns true; false once the deadline has passed (the
// predicate is evaluated one last time at the deadline). No gtest side effects.
bool poll_until(const std::function<bool()>& predicate, SteadyClock::time_point deadline);
bool poll_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

// Like poll_until, and on timeout records a non-fatal gtest failure
//   "timed out after 5000 ms waiting for <what>"
// Use as ASSERT_TRUE(wait_until(...)) to stop the test there.
bool wait_until(const std::function<bool()>& predicate, SteadyClock::time_point deadline,
                std::string_view what);
bool wait_until(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
                std::string_view what);

}  // namespace pgshift::test
