// proxy/session/relay/relay_state: the legal steps of the relay's state machine
// (docs/architecture.md, "The relay's state machine").
#include "proxy/session/relay/relay_state.hpp"

#include <gtest/gtest.h>

namespace pgshift::proxy {
namespace {

TEST(RelayStateTest, ClientDirectionParksOnlyFromRunningAndWakesThroughWoken) {
  EXPECT_TRUE(legal(C2s::running, C2s::hot_wait));
  EXPECT_TRUE(legal(C2s::hot_wait, C2s::running));
  EXPECT_TRUE(legal(C2s::running, C2s::parked));
  EXPECT_TRUE(legal(C2s::parked, C2s::woken));
  EXPECT_TRUE(legal(C2s::woken, C2s::running));
  EXPECT_TRUE(legal(C2s::running, C2s::running));
  // A hot read is never parked directly (it is cancelled first), and a parked client has
  // no coroutine that could read.
  EXPECT_FALSE(legal(C2s::hot_wait, C2s::parked));
  EXPECT_FALSE(legal(C2s::parked, C2s::running));
  EXPECT_FALSE(legal(C2s::parked, C2s::hot_wait));
  EXPECT_FALSE(legal(C2s::woken, C2s::parked));
}

TEST(RelayStateTest, ServerDirectionWaitsIdleOnlyWithNothingHeld) {
  EXPECT_TRUE(legal(S2c::stopped, S2c::running));
  EXPECT_TRUE(legal(S2c::running, S2c::idle_wait));
  EXPECT_TRUE(legal(S2c::holding, S2c::idle_wait));
  EXPECT_TRUE(legal(S2c::idle_wait, S2c::waking));
  EXPECT_TRUE(legal(S2c::waking, S2c::running));
  EXPECT_TRUE(legal(S2c::idle_wait, S2c::running));
  EXPECT_TRUE(legal(S2c::running, S2c::holding));
  EXPECT_TRUE(legal(S2c::holding, S2c::running));
  EXPECT_TRUE(legal(S2c::holding, S2c::stopped));
  EXPECT_TRUE(legal(S2c::running, S2c::done));
  // Bytes come only after the wait ended; a stopped direction is started, not resumed.
  EXPECT_FALSE(legal(S2c::idle_wait, S2c::holding));
  EXPECT_FALSE(legal(S2c::waking, S2c::idle_wait));
  EXPECT_FALSE(legal(S2c::stopped, S2c::idle_wait));
  EXPECT_FALSE(legal(S2c::idle_wait, S2c::stopped));
  // An ended session's server direction is never started again.
  for (S2c s : {S2c::stopped, S2c::running, S2c::idle_wait, S2c::waking, S2c::holding}) {
    EXPECT_FALSE(legal(S2c::done, s)) << to_string(s);
  }
}

TEST(RelayStateTest, FenceRerunRunsInOrder) {
  EXPECT_TRUE(legal(Fence::none, Fence::dropping));
  EXPECT_TRUE(legal(Fence::dropping, Fence::rolling_back));
  EXPECT_TRUE(legal(Fence::dropping, Fence::rerunning));
  EXPECT_TRUE(legal(Fence::rolling_back, Fence::rerunning));
  EXPECT_TRUE(legal(Fence::rerunning, Fence::none));
  EXPECT_TRUE(legal(Fence::dropping, Fence::none));  // the route did not move, or failure
  EXPECT_FALSE(legal(Fence::none, Fence::rolling_back));
  EXPECT_FALSE(legal(Fence::none, Fence::rerunning));
  EXPECT_FALSE(legal(Fence::rerunning, Fence::rolling_back));
}

TEST(RelayStateTest, Names) {
  EXPECT_EQ(to_string(C2s::hot_wait), "hot_wait");
  EXPECT_EQ(to_string(S2c::idle_wait), "idle_wait");
  EXPECT_EQ(to_string(Fence::rolling_back), "rolling_back");
}

}  // namespace
}  // namespace pgshift::proxy
