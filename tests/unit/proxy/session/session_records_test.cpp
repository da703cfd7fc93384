// Session records (proxy/session/session_records.hpp): slots of one size, reused after a
// free; other sizes go to the heap; shared_ptrs made with the allocator free their slot.
#include "proxy/session/session_records.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <memory>
#include <set>
#include <vector>

#include "proxy/session/asan.hpp"

namespace pgshift::proxy {
namespace {

struct Record {
  std::array<std::uint8_t, 700> bytes{};
};

TEST(SessionRecordsTest, AFreedSlotServesTheNextRecordAndOtherSizesUseTheHeap) {
  // The first allocation of this process fixes the slot size (a Record with its control
  // block, as ClientSession::create makes them).
  auto first = std::allocate_shared<Record>(SessionRecordAllocator<Record>{});
  std::set<const void*> seen;
  std::vector<std::shared_ptr<Record>> live;
  for (int i = 0; i < 1000; ++i) {  // past one chunk
    live.push_back(std::allocate_shared<Record>(SessionRecordAllocator<Record>{}));
    live.back()->bytes.fill(static_cast<std::uint8_t>(i));
    EXPECT_TRUE(seen.insert(live.back().get()).second) << "slot handed out twice";
  }
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(live[static_cast<std::size_t>(i)]->bytes[699], static_cast<std::uint8_t>(i));
  }
  const void* freed = live[500].get();
  live[500].reset();
  auto again = std::allocate_shared<Record>(SessionRecordAllocator<Record>{});
  EXPECT_EQ(again.get(), freed);

  void* other = session_records::allocate(64);
  ASSERT_NE(other, nullptr);
  session_records::deallocate(other, 64);
}

#if defined(PGSHIFT_ASAN)
// Under ASan a free slot is poisoned, so a use of a session record after its free is
// reported; a slot handed out again is addressable.
TEST(SessionRecordsTest, AFreeSlotIsPoisonedUnderAddressSanitizer) {
  auto record = std::allocate_shared<Record>(SessionRecordAllocator<Record>{});
  const Record* freed = record.get();
  EXPECT_EQ(__asan_address_is_poisoned(&freed->bytes[0]), 0);
  record.reset();
  EXPECT_NE(__asan_address_is_poisoned(&freed->bytes[0]), 0);
  EXPECT_NE(__asan_address_is_poisoned(&freed->bytes[699]), 0);
  EXPECT_DEATH(static_cast<void>(*static_cast<const volatile std::uint8_t*>(&freed->bytes[100])),
               "use-after-poison");
  auto again = std::allocate_shared<Record>(SessionRecordAllocator<Record>{});
  ASSERT_EQ(again.get(), freed);
  EXPECT_EQ(__asan_address_is_poisoned(&again->bytes[699]), 0);
}
#endif

}  // namespace
}  // namespace pgshift::proxy
