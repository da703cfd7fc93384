#include "routing/split.hpp"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <cmath>
#include <limits>
#include <string>

namespace pgshift::routing {
namespace {

// Computed once and pinned: if any of these change, every sidecar of a running migration
// would disagree with the old ones about which users read from the target. Never update
// these values; a different mapping needs a new, opt-in function.
struct Pinned {
  std::string_view key;
  std::uint32_t bucket;
  std::uint64_t hash;
};
constexpr Pinned kPinned[] = {
    {"", 3138u, 0x2d06800538d394c2ull},
    {"0", 133u, 0x1982e3a7bb241055ull},
    {"1", 3464u, 0x65cd25028f98f158ull},
    {"42", 5473u, 0x1217cb28c0ef2191ull},
    {"user-0", 9328u, 0xf92bcd191370a1e0ull},
    {"user-1", 6057u, 0x7c7615c11438e5c9ull},
    {"user-2", 1220u, 0x20333bb6481664d4ull},
    {"user-42", 2621u, 0x50fe4b21cf7b09cdull},
    {"user-999999", 7111u, 0x817b65f4602b8dc7ull},
    {"alice", 8080u, 0x4da10dd61a0116b0ull},
    {"bob", 3397u, 0x1403c0c40f49b8e5ull},
    {"550e8400-e29b-41d4-a716-446655440000", 8035u, 0x05dac8bdcc9c8ac3ull},
    {"/abc", 4779u, 0x69ce65996c1c9dabull},
    {"tenant:7/user:12", 3440u, 0xf32b475df0c8df20ull},
};

TEST(Split, PinnedBuckets) {
  for (const auto& p : kPinned) {
    EXPECT_EQ(XXH3_64bits(p.key.data(), p.key.size()), p.hash) << p.key;
    EXPECT_EQ(bucket(p.key), p.bucket) << p.key;
  }
}

TEST(Split, GoesToTargetIffBucketBelowBasisPoints) {
  // "42" is bucket 5473.
  EXPECT_FALSE(goes_to_target("42", *ReadPercent::from_basis_points(5473)));
  EXPECT_TRUE(goes_to_target("42", *ReadPercent::from_basis_points(5474)));
  EXPECT_FALSE(goes_to_target("42", *ReadPercent::parse("54.73")));
  EXPECT_TRUE(goes_to_target("42", *ReadPercent::parse("54.74")));
  for (const auto& p : kPinned) {
    EXPECT_FALSE(goes_to_target(p.key, ReadPercent()));
    EXPECT_TRUE(goes_to_target(p.key, *ReadPercent::from_basis_points(10000)));
  }
}

TEST(Split, DistributionOverAMillionKeys) {
  constexpr int kKeys = 1000000;
  const std::uint32_t percents_bp[] = {100, 1000, 5000, 9000};
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < kKeys; ++i) {
    const std::uint32_t b = bucket("user-" + std::to_string(i));
    ASSERT_LT(b, kBuckets);
    for (int p = 0; p < 4; ++p) {
      if (bucket_goes_to_target(b, *ReadPercent::from_basis_points(percents_bp[p]))) ++counts[p];
    }
  }
  for (int p = 0; p < 4; ++p) {
    const double share = 100.0 * counts[p] / kKeys;
    const double want = percents_bp[p] / 100.0;
    EXPECT_NEAR(share, want, 0.5) << "at " << want << " %";
  }
}

TEST(Split, MonotonicWhenRaisingThePercent) {
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "k" + std::to_string(i * 7919);
    const std::uint32_t b = bucket(key);
    bool was_target = false;
    for (std::uint32_t bp = 0; bp <= 10000; bp += 37) {
      const bool now_target = bucket_goes_to_target(b, *ReadPercent::from_basis_points(bp));
      ASSERT_TRUE(now_target || !was_target) << key << " moved back at " << bp;
      was_target = now_target;
    }
    EXPECT_TRUE(bucket_goes_to_target(b, *ReadPercent::from_basis_points(10000)));
  }
}

TEST(ReadPercentTest, Parse) {
  EXPECT_EQ(ReadPercent::parse("12.5")->basis_points(), 1250u);
  EXPECT_EQ(ReadPercent::parse("12.50")->basis_points(), 1250u);
  EXPECT_EQ(ReadPercent::parse("12.500")->basis_points(), 1250u);
  EXPECT_EQ(ReadPercent::parse("0")->basis_points(), 0u);
  EXPECT_EQ(ReadPercent::parse("0.01")->basis_points(), 1u);
  EXPECT_EQ(ReadPercent::parse(".5")->basis_points(), 50u);
  EXPECT_EQ(ReadPercent::parse("7.")->basis_points(), 700u);
  EXPECT_EQ(ReadPercent::parse("100")->basis_points(), 10000u);
  EXPECT_EQ(ReadPercent::parse("100.00")->basis_points(), 10000u);
  EXPECT_EQ(ReadPercent::parse("007")->basis_points(), 700u);
  for (std::string_view bad : {"", ".", "-1", "-0", "100.01", "101", "12.345", "1e1", " 1", "1 ",
                               "abc", "12,5", "1000000000000000000000", "+5"}) {
    EXPECT_FALSE(ReadPercent::parse(bad)) << bad;
  }
}

TEST(ReadPercentTest, Format) {
  EXPECT_EQ(ReadPercent::from_basis_points(1250)->to_string(), "12.5");
  EXPECT_EQ(ReadPercent::from_basis_points(1200)->to_string(), "12");
  EXPECT_EQ(ReadPercent::from_basis_points(5)->to_string(), "0.05");
  EXPECT_EQ(ReadPercent::from_basis_points(1234)->to_string(), "12.34");
  EXPECT_EQ(ReadPercent::from_basis_points(10000)->to_string(), "100");
  EXPECT_EQ(ReadPercent().to_string(), "0");
  for (std::uint32_t bp = 0; bp <= 10000; ++bp) {
    const auto p = ReadPercent::from_basis_points(bp);
    ASSERT_TRUE(p);
    ASSERT_EQ(ReadPercent::parse(p->to_string()), p) << bp;
    ASSERT_EQ(ReadPercent::from_double(p->as_double()), p) << bp;
  }
  EXPECT_FALSE(ReadPercent::from_basis_points(10001));
}

TEST(ReadPercentTest, FromDouble) {
  EXPECT_EQ(ReadPercent::from_double(12.5)->basis_points(), 1250u);
  EXPECT_EQ(ReadPercent::from_double(0.07)->basis_points(), 7u);  // 7.000000000000001
  EXPECT_EQ(ReadPercent::from_double(33.33)->basis_points(), 3333u);
  EXPECT_EQ(ReadPercent::from_double(100.0)->basis_points(), 10000u);
  EXPECT_FALSE(ReadPercent::from_double(12.345));
  EXPECT_FALSE(ReadPercent::from_double(-0.01));
  EXPECT_FALSE(ReadPercent::from_double(100.01));
  EXPECT_FALSE(ReadPercent::from_double(std::nan("")));
  EXPECT_FALSE(ReadPercent::from_double(std::numeric_limits<double>::infinity()));
}

}  // namespace
}  // namespace pgshift::routing
