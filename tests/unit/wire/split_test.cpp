// Every stream, fed split at every byte position, byte at a time and in random chunks, must
// decode to exactly the same messages (Beast's parser tests do the same).
#include <gtest/gtest.h>

#include <random>

#include "stream_decoder.hpp"
#include "vectors.hpp"

namespace pgshift::wire::test {
namespace {

using TypeSet = MessageScanner::TypeSet;

std::vector<std::pair<std::string, TypeSet>> wanted_sets(Direction dir) {
  TypeSet all;
  all.set();
  return {
      {"inspect", dir == Direction::frontend ? type_set({'Q', 'P', 'B', 'C', 'D', 'E', 'p'})
                                             : type_set({'R', 'K', 'S', 'Z', 'E', 'N', 'C'})},
      {"none", TypeSet{}},
      {"all", all},
  };
}

std::vector<std::string> decode(const StreamVector& v, const TypeSet& wanted,
                                std::vector<std::size_t> chunks) {
  return decode_in_chunks(v.bytes, v.dir, wanted, v.with_startup, chunks);
}

// Runs every split strategy and checks that they agree with the one-chunk decoding.
void check_split_invariance(const StreamVector& v, const TypeSet& wanted,
                            const std::vector<std::string>& reference) {
  const std::size_t n = v.bytes.size();
  for (std::size_t k = 0; k <= n; ++k) {
    ASSERT_EQ(decode(v, wanted, {k}), reference) << "split at " << k;
  }
  ASSERT_EQ(decode(v, wanted, std::vector<std::size_t>(n, 1)), reference) << "byte at a time";
  std::mt19937 rng(12345);
  const int rounds = n > 10'000 ? 10 : 100;  // big streams already cost n decodings above
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::size_t> chunks;
    for (std::size_t total = 0; total < n;) {
      const std::size_t c = std::uniform_int_distribution<std::size_t>(0, 64)(rng) == 0
                                ? std::uniform_int_distribution<std::size_t>(0, n)(rng)
                                : std::uniform_int_distribution<std::size_t>(0, 9)(rng);
      chunks.push_back(c);
      total += c;
    }
    ASSERT_EQ(decode(v, wanted, chunks), reference) << "random chunks, round " << round;
  }
}

TEST(SplitTest, ValidStreamsDecodeIdenticallyAtEverySplit) {
  for (const StreamVector& v : valid_streams()) {
    for (const auto& [set_name, wanted] : wanted_sets(v.dir)) {
      SCOPED_TRACE(v.name + " / wanted=" + set_name);
      const auto reference = decode(v, wanted, {});
      ASSERT_FALSE(reference.empty());
      for (const std::string& e : reference) {
        EXPECT_EQ(e.find("error"), std::string::npos) << e;
        EXPECT_EQ(e.find("PARSE-ERROR"), std::string::npos) << e;
      }
      check_split_invariance(v, wanted, reference);
    }
  }
}

TEST(SplitTest, EveryPrefixDecodesToAPrefixOfTheEvents) {
  for (const StreamVector& v : valid_streams()) {
    if (v.bytes.size() > 4'000) continue;
    for (const auto& [set_name, wanted] : wanted_sets(v.dir)) {
      SCOPED_TRACE(v.name + " / wanted=" + set_name);
      const auto reference = decode(v, wanted, {});
      for (std::size_t k = 0; k < v.bytes.size(); ++k) {
        StreamVector prefix = v;
        prefix.bytes.resize(k);
        StreamDecoder d(prefix.bytes, v.dir, wanted, v.with_startup);
        d.deliver(k);
        ASSERT_FALSE(d.failed()) << "prefix " << k;
        ASSERT_LE(d.events().size(), reference.size());
        ASSERT_TRUE(std::equal(d.events().begin(), d.events().end(), reference.begin()));
      }
    }
  }
}

TEST(SplitTest, BadStreamsFailAtTheSameMessageAtEverySplit) {
  for (const BadStreamVector& b : bad_streams()) {
    for (const auto& [set_name, wanted] : wanted_sets(b.stream.dir)) {
      SCOPED_TRACE(b.stream.name + " / wanted=" + set_name);
      const auto reference = decode(b.stream, wanted, {});
      ASSERT_FALSE(reference.empty());
      EXPECT_NE(reference.back().find(make_error_code(b.expected).message()), std::string::npos)
          << reference.back();
      EXPECT_NE(reference.back().find("error"), std::string::npos);
      check_split_invariance(b.stream, wanted, reference);
    }
  }
}

// Spot checks that the driver really decodes what the vectors contain.
TEST(SplitTest, ExtendedQueryEvents) {
  const auto streams = valid_streams();
  const StreamVector& v = streams[1];
  ASSERT_EQ(v.name, "extended_query");
  const auto events = decode(v, wanted_sets(v.dir)[0].second, {});
  const std::vector<std::string> expected = {
      "msg P len=28 at=0 stmt=s1 sql=SELECT $1::int types=23;",
      "msg B len=22 at=29 portal= stmt=s1",
      "msg D len=6 at=52 kind=P name=",
      "msg E len=9 at=59 portal= max_rows=0",
      "skip S len=4 at=69",
      "msg C len=8 at=74 kind=S name=s1",
      "skip H len=4 at=83",
      "skip S len=4 at=88",
      "msg Q len=5 at=93 sql=",
      "skip X len=4 at=99",
  };
  EXPECT_EQ(events, expected);
}

TEST(SplitTest, StartupStreamEvents) {
  const auto streams = valid_streams();
  const StreamVector& v = streams[4];
  ASSERT_EQ(v.name, "ssl_then_startup");
  const auto events = decode(v, wanted_sets(v.dir)[0].second, {});
  const std::vector<std::string> expected = {
      "ssl_request",
      "startup protocol=196610 user=bob",
      "skip S len=4 at=26",
  };
  EXPECT_EQ(events, expected);
}

}  // namespace
}  // namespace pgshift::wire::test
