#include "wait.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace pgshift::test {

using std::chrono::milliseconds;

bool poll_until(const std::function<bool()>& predicate, SteadyClock::time_point deadline) {
  auto backoff = milliseconds(1);
  while (true) {
    if (predicate()) return true;
    const auto now = SteadyClock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_for(
        std::min<SteadyClock::duration>(backoff, deadline - now + milliseconds(1)));
    backoff = std::min(backoff * 2, milliseconds(50));
  }
}

bool poll_until(const std::function<bool()>& predicate, milliseconds timeout) {
  return poll_until(predicate, SteadyClock::now() + timeout);
}

bool wait_until(const std::function<bool()>& predicate, SteadyClock::time_point deadline,
                std::string_view what) {
  const auto start = SteadyClock::now();
  if (poll_until(predicate, deadline)) return true;
  const auto waited = std::chrono::duration_cast<milliseconds>(SteadyClock::now() - start);
  ADD_FAILURE() << "timed out after " << waited.count() << " ms waiting for " << what;
  return false;
}

bool wait_until(const std::function<bool()>& predicate, milliseconds timeout,
                std::string_view what) {
  return wait_until(predicate, SteadyClock::now() + timeout, what);
}

}  // namespace pgshift::test
