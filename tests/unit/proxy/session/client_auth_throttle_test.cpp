// The failed-login throttle (proxy/session/client_auth_throttle.hpp) with a hand-driven
// clock: budgets per address and per user, reservations for parallel attempts, refunds,
// bursts logged once, bounded memory.
#include "proxy/session/client_auth_throttle.hpp"

#include <gtest/gtest.h>

namespace pgshift::proxy {
namespace {

using namespace std::chrono_literals;
using Action = AuthThrottle::Action;
using Outcome = AuthThrottle::Outcome;

config::AuthThrottle settings(int burst, int user_burst = 0) {
  config::AuthThrottle s;
  s.failures_burst = burst;
  s.user_failures_burst = user_burst;
  s.failure_interval = 1000ms;
  s.max_delay = 3000ms;
  s.max_tracked = 100;
  return s;
}

const auto t0 = AuthThrottle::Clock::time_point{} + 1h;

// One complete attempt: begin, then end with `outcome` unless refused.
AuthThrottle::Decision attempt(AuthThrottle& t, const config::AuthThrottle& s,
                               std::string_view address, std::string_view user, Outcome outcome,
                               AuthThrottle::Clock::time_point now) {
  auto d = t.begin(s, address, user, now);
  if (d.action != Action::refuse) t.end(s, address, user, outcome, now);
  return d;
}

TEST(AuthThrottle, BurstThenDelayThenRefuse) {
  AuthThrottle t;
  auto s = settings(3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(attempt(t, s, "10.0.0.1", "app", Outcome::wrong_password, t0).action, Action::go);
  }
  // Parallel attempts reserve later tokens: 1 s, 2 s, 3 s, then past max_delay.
  auto d1 = t.begin(s, "10.0.0.1", "app", t0);
  EXPECT_EQ(d1.action, Action::wait);
  EXPECT_EQ(d1.delay, 1s);
  EXPECT_TRUE(d1.burst_started);
  EXPECT_EQ(d1.failures, 3u);
  auto d2 = t.begin(s, "10.0.0.1", "app", t0);
  EXPECT_EQ(d2.action, Action::wait);
  EXPECT_EQ(d2.delay, 2s);
  EXPECT_FALSE(d2.burst_started);  // logged once per burst
  EXPECT_EQ(t.begin(s, "10.0.0.1", "app", t0).delay, 3s);
  auto refused = t.begin(s, "10.0.0.1", "app", t0);
  EXPECT_EQ(refused.action, Action::refuse);
  EXPECT_FALSE(refused.by_user);
  // Another address is not slowed down at all.
  EXPECT_EQ(attempt(t, s, "10.0.0.2", "app", Outcome::ok, t0).action, Action::go);
  EXPECT_EQ(t.tracked_addresses(), 1u);  // a good login leaves nothing behind
}

TEST(AuthThrottle, GoodLoginsAndAbandonedAttemptsCostNothing) {
  AuthThrottle t;
  auto s = settings(2);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(attempt(t, s, "10.0.0.1", "app", i % 2 ? Outcome::ok : Outcome::abandoned, t0).action,
              Action::go);
  }
  EXPECT_EQ(t.tracked_addresses(), 0u);
}

// Many logins at once from a clean address (pgbench -c 200, a pod's pool warming up) are
// never held back: only addresses with wrong passwords lately reserve tokens.
TEST(AuthThrottle, ConcurrentLoginsFromACleanAddressNeverWait) {
  AuthThrottle t;
  auto s = settings(2, 2);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(t.begin(s, "10.0.0.1", "app", t0).action, Action::go);
  for (int i = 0; i < 50; ++i) t.end(s, "10.0.0.1", "app", Outcome::ok, t0);
  EXPECT_EQ(t.tracked_addresses(), 0u);
}

TEST(AuthThrottle, BucketRefillsOverTime) {
  AuthThrottle t;
  auto s = settings(2);
  attempt(t, s, "a", "u", Outcome::wrong_password, t0);
  attempt(t, s, "a", "u", Outcome::wrong_password, t0);
  EXPECT_EQ(t.begin(s, "a", "u", t0 + 500ms).delay, 500ms);  // reserved: half a token left
  t.end(s, "a", "u", Outcome::wrong_password, t0 + 1s);
  // 1.5 s later than the reservation's token: one token, no wait.
  EXPECT_EQ(attempt(t, s, "a", "u", Outcome::wrong_password, t0 + 2s).action, Action::go);
  // Fully refilled: the next burst is logged again.
  attempt(t, s, "a", "u", Outcome::wrong_password, t0 + 10s);
  attempt(t, s, "a", "u", Outcome::wrong_password, t0 + 10s);
  auto d = t.begin(s, "a", "u", t0 + 10s);
  EXPECT_EQ(d.action, Action::wait);
  EXPECT_TRUE(d.burst_started);
  EXPECT_EQ(d.failures, 2u);  // counted since the bucket recovered
}

TEST(AuthThrottle, PerUserBudgetAcrossAddresses) {
  AuthThrottle t;
  auto s = settings(100, 3);
  for (int i = 0; i < 3; ++i) {
    attempt(t, s, "10.0.0." + std::to_string(i), "victim", Outcome::wrong_password, t0);
  }
  auto d = t.begin(s, "10.0.0.99", "victim", t0);
  EXPECT_EQ(d.action, Action::wait);
  EXPECT_TRUE(d.by_user);
  EXPECT_EQ(attempt(t, s, "10.0.0.99", "someone_else", Outcome::ok, t0).action, Action::go);
  s.user_failures_burst = 0;  // off (e.g. after a reload)
  EXPECT_EQ(t.begin(s, "10.0.0.98", "victim", t0).action, Action::go);
}

TEST(AuthThrottle, MaxDelayZeroRefusesInsteadOfWaiting) {
  AuthThrottle t;
  auto s = settings(1);
  s.max_delay = 0ms;
  attempt(t, s, "a", "u", Outcome::wrong_password, t0);
  EXPECT_EQ(t.begin(s, "a", "u", t0).action, Action::refuse);
}

TEST(AuthThrottle, MemoryIsBounded) {
  AuthThrottle t;
  auto s = settings(5, 5);
  s.max_tracked = 16;
  for (int i = 0; i < 1000; ++i) {
    std::string n = std::to_string(i);
    attempt(t, s, "10.1." + n, "user" + n, Outcome::wrong_password, t0 + std::chrono::seconds(i));
  }
  EXPECT_LE(t.tracked_addresses(), 16u);
  EXPECT_LE(t.tracked_users(), 16u);
  // The newest entries are the ones kept.
  attempt(t, s, "10.1.999", "x", Outcome::wrong_password, t0 + 999s);
  EXPECT_LE(t.tracked_addresses(), 16u);
}

TEST(AuthThrottle, AddressKeys) {
  EXPECT_EQ(throttle_address_key("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(throttle_address_key("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(throttle_address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(throttle_address_key("2001:db8:1:2::1"), throttle_address_key("2001:db8:1:2::2"));
  EXPECT_EQ(throttle_address_key("::1"), "::/64");
}

}  // namespace
}  // namespace pgshift::proxy
