#include "routing/sync_position.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <memory>

namespace pgshift::routing {
namespace {

TEST(SyncPosition, LagIsUnknownUntilTheFirstMarkerIsApplied) {
  SyncPosition p(1000);
  EXPECT_EQ(p.lag_ms(5000), std::numeric_limits<std::int64_t>::max());
  EXPECT_TRUE(p.lagging(5000));
  p.publish(4500, 1700000000000);
  EXPECT_EQ(p.lag_ms(5000), 500);
  EXPECT_FALSE(p.lagging(5000));
  // Nothing new applied: the lag grows with the clock alone (a database is down).
  EXPECT_EQ(p.lag_ms(5500), 1000);
  EXPECT_TRUE(p.lagging(5500));
  p.set_max_lag_ms(2000);
  EXPECT_FALSE(p.lagging(5500));
}

TEST(SyncPosition, NeverMovesBackwardsAndResets) {
  SyncPosition p(1000);
  p.publish(4500, 1);
  p.publish(4000, 2);  // an older marker observed late
  EXPECT_EQ(p.applied_before_ms(), 4500);
  p.reset();
  EXPECT_EQ(p.applied_before_ms(), SyncPosition::kUnknown);
  EXPECT_TRUE(p.lagging(4600));
}

TEST(MarkerOracle, AWriteIsCaughtUpOnceAMarkerWrittenAfterItIsApplied) {
  auto p = std::make_shared<SyncPosition>(1000);
  MarkerOracle oracle(p);
  const WriteMark write{2000, 0};
  EXPECT_FALSE(oracle.caught_up(write, 999999));  // nothing applied: hold, however long
  p->publish(2000, 0);                            // marker written at the same millisecond
  EXPECT_FALSE(oracle.caught_up(write, 999999));
  p->publish(2001, 0);
  EXPECT_TRUE(oracle.caught_up(write, 0));

  ReadYourWrites ryw(std::make_shared<MarkerOracle>(p));
  ryw.record_write("alice", {3000, 0});
  EXPECT_TRUE(ryw.must_hold("alice", 3100));
  EXPECT_FALSE(ryw.must_hold("bob", 3100));
  p->publish(3050, 0);
  EXPECT_FALSE(ryw.must_hold("alice", 3100));
}

}  // namespace
}  // namespace pgshift::routing
