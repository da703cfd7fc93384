// The buffered-message budget (proxy/runtime/memory_budget.hpp) and the read buffer's charge
// (proxy/session/io_buffer.hpp): bytes are given back exactly when the large block goes.
#include "proxy/runtime/memory_budget.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "proxy/session/io_buffer.hpp"

namespace pgshift::proxy {
namespace {

TEST(MemoryBudgetTest, ChargesWithinTheLimitOnly) {
  MemoryBudget budget;
  EXPECT_TRUE(budget.try_charge(60, 100));
  EXPECT_FALSE(budget.try_charge(41, 100));
  EXPECT_TRUE(budget.try_charge(40, 100));
  EXPECT_EQ(budget.used(), 100u);
  EXPECT_FALSE(budget.try_charge(1, 100));
  budget.release(100);
  EXPECT_FALSE(budget.try_charge(101, 100));
  EXPECT_EQ(budget.used(), 0u);
}

TEST(MemoryBudgetTest, ChargeGrowsShrinksMovesAndReleasesOnDestruction) {
  MemoryBudget budget;
  {
    MemoryCharge a;
    EXPECT_TRUE(a.set(budget, 30, 100));
    EXPECT_TRUE(a.set(budget, 80, 100));
    EXPECT_FALSE(a.set(budget, 101, 100));
    EXPECT_EQ(a.bytes(), 80u);  // a refused growth keeps what it had
    EXPECT_TRUE(a.set(budget, 10, 100));
    EXPECT_EQ(budget.used(), 10u);
    MemoryCharge b = std::move(a);
    EXPECT_EQ(a.bytes(), 0u);
    EXPECT_EQ(b.bytes(), 10u);
    EXPECT_EQ(budget.used(), 10u);
  }
  EXPECT_EQ(budget.used(), 0u);
}

TEST(MemoryBudgetTest, ConcurrentChargesNeverPassTheLimit) {
  MemoryBudget budget;
  constexpr std::size_t kLimit = 1000;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        if (budget.try_charge(7, kLimit)) {
          if (budget.used() > kLimit) failures.fetch_add(1);
          budget.release(7);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(budget.used(), 0u);
}

TEST(IoBufferChargeTest, LargeBlockIsChargedUntilShrunkOrReleased) {
  MemoryBudget budget;
  IoBuffer buf;
  buf.writable();
  buf.commit(5);
  EXPECT_TRUE(buf.reserve_charged(IoBuffer::kBlockSize, budget, 1 << 20));
  EXPECT_EQ(budget.used(), 0u);  // a standard block is never charged
  EXPECT_FALSE(buf.reserve_charged(2 << 20, budget, 1 << 20));
  EXPECT_EQ(buf.capacity(), IoBuffer::kBlockSize);  // refused: nothing changed
  EXPECT_EQ(buf.size(), 5u);
  ASSERT_TRUE(buf.reserve_charged(100000, budget, 1 << 20));
  EXPECT_EQ(budget.used(), 100000u);
  EXPECT_GE(buf.capacity(), 100000u);
  buf.shrink();  // what is left fits a standard block
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_EQ(buf.capacity(), IoBuffer::kBlockSize);
  EXPECT_EQ(buf.size(), 5u);
  ASSERT_TRUE(buf.reserve_charged(200000, budget, 1 << 20));
  buf.consume(5);
  buf.release_if_empty();
  EXPECT_EQ(budget.used(), 0u);
  EXPECT_FALSE(buf.holds_memory());
}

}  // namespace
}  // namespace pgshift::proxy
