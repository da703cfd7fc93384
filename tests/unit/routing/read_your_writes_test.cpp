#include "routing/read_your_writes.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace pgshift::routing {
namespace {

std::shared_ptr<const CatchUpOracle> window(std::int64_t ms) {
  return std::make_shared<WindowOracle>(ms);
}

TEST(ReadYourWrites, HoldsForTheWindow) {
  ReadYourWrites ryw(window(2000));
  EXPECT_FALSE(ryw.must_hold("42", 0));
  ryw.record_write("42", {10000, 0});
  EXPECT_TRUE(ryw.must_hold("42", 10000));
  EXPECT_TRUE(ryw.must_hold("42", 11999));
  EXPECT_FALSE(ryw.must_hold("43", 10001));  // other keys are not held
  EXPECT_FALSE(ryw.must_hold("42", 12000));
  EXPECT_EQ(ryw.size(), 0u);  // dropped once caught up
}

TEST(ReadYourWrites, LaterWriteExtendsTheHold) {
  ReadYourWrites ryw(window(1000));
  ryw.record_write("k", {0, 0});
  ryw.record_write("k", {900, 0});
  EXPECT_EQ(ryw.size(), 1u);
  EXPECT_TRUE(ryw.must_hold("k", 1500));
  EXPECT_FALSE(ryw.must_hold("k", 1900));
}

TEST(ReadYourWrites, ZeroWindowNeverHolds) {
  ReadYourWrites ryw(window(0));
  ryw.record_write("k", {5, 0});
  EXPECT_FALSE(ryw.must_hold("k", 5));
}

TEST(ReadYourWrites, SweepDropsExpiredEntries) {
  ReadYourWrites ryw(window(100));
  for (int i = 0; i < 50; ++i) ryw.record_write("k" + std::to_string(i), {i, 0});
  EXPECT_EQ(ryw.size(), 50u);
  ryw.sweep(124);  // writes at 0..24 have caught up
  EXPECT_EQ(ryw.size(), 25u);
  ryw.sweep(1000);
  EXPECT_EQ(ryw.size(), 0u);
}

TEST(ReadYourWrites, MemoryIsBoundedAndEvictionFailsSafe) {
  ReadYourWrites ryw(window(1000), 100);
  for (int i = 0; i < 1000; ++i) {
    ryw.record_write("user-" + std::to_string(i), {static_cast<std::int64_t>(i), 0});
    ASSERT_LE(ryw.size(), 100u);
  }
  EXPECT_EQ(ryw.evictions(), 900u);
  // An evicted key is still held: the global hold covers it until its write caught up.
  EXPECT_TRUE(ryw.global_hold(1000));
  EXPECT_TRUE(ryw.must_hold("user-0", 1000));
  EXPECT_TRUE(ryw.must_hold("never-wrote", 1000));
  // The newest evicted write was at 899: every key is free from 1899 on, except the 100
  // still tracked, which are held until their own writes catch up.
  EXPECT_TRUE(ryw.must_hold("never-wrote", 1898));
  EXPECT_FALSE(ryw.must_hold("never-wrote", 1899));
  EXPECT_FALSE(ryw.global_hold(1899));
  EXPECT_TRUE(ryw.must_hold("user-999", 1899));
  EXPECT_FALSE(ryw.must_hold("user-999", 1999));
}

TEST(ReadYourWrites, ExpiredEntriesAreReusedBeforeEvicting) {
  ReadYourWrites ryw(window(10), 10);
  for (int i = 0; i < 1000; ++i) {
    ryw.record_write("u" + std::to_string(i), {static_cast<std::int64_t>(i * 5), 0});
  }
  EXPECT_EQ(ryw.evictions(), 0u);  // only ~2 writes are ever in flight
  EXPECT_LE(ryw.size(), 3u);
}

// The hook for the sync feature: caught up when the target applied past the write.
class PositionOracle final : public CatchUpOracle {
 public:
  bool caught_up(const WriteMark& mark, std::int64_t) const override {
    return applied >= mark.position;
  }
  std::uint64_t applied = 0;
};

TEST(ReadYourWrites, PositionOracleReplacesTheWindow) {
  auto oracle = std::make_shared<PositionOracle>();
  ReadYourWrites ryw(oracle);
  ryw.record_write("k", {0, 500});
  EXPECT_TRUE(ryw.must_hold("k", 1000000));  // time alone does not release it
  oracle->applied = 499;
  EXPECT_TRUE(ryw.must_hold("k", 0));
  oracle->applied = 500;
  EXPECT_FALSE(ryw.must_hold("k", 0));
}

TEST(ReadYourWrites, ThreadSafe) {
  ReadYourWrites ryw(window(50), 1000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&ryw, t] {
      for (int i = 0; i < 5000; ++i) {
        const std::string key = "t" + std::to_string(t) + "-" + std::to_string(i % 300);
        ryw.record_write(key, {i, 0});
        (void)ryw.must_hold(key, i);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(ryw.size(), 1000u);
}

}  // namespace
}  // namespace pgshift::routing
