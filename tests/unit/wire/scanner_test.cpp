#include "wire/scanner.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "test_bytes.hpp"

// Counts heap allocations, to check that feed() never allocates. Replacing the global
// operator new is allowed by the standard; it only counts and forwards to malloc.
namespace {
std::atomic<std::size_t> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace pgshift::wire::test {
namespace {

using TypeSet = MessageScanner::TypeSet;

MessageScanner frontend(TypeSet wanted = type_set({'Q', 'P', 'p'}), Limits limits = {}) {
  return MessageScanner(Direction::frontend, limits, wanted);
}

// After an error, the scanner must refuse everything, even valid bytes.
void expect_stays_failed(MessageScanner& s, errc expected) {
  EXPECT_TRUE(s.failed());
  const Bytes valid = frame('Q', lit("x\0"));
  for (int i = 0; i < 3; ++i) {
    const ScanResult r = s.feed(valid);
    EXPECT_EQ(r.kind, ScanKind::error);
    EXPECT_EQ(r.error, expected);
    EXPECT_EQ(r.consumed, 0u);
  }
  s.set_wanted(TypeSet{}.set());
  EXPECT_EQ(s.feed(valid).kind, ScanKind::error);
  EXPECT_TRUE(s.failed());
}

void expect_error(MessageScanner s, const Bytes& data, errc expected) {
  const ScanResult r = s.feed(data);
  EXPECT_EQ(r.kind, ScanKind::error);
  EXPECT_EQ(r.error, expected) << r.error.message();
  EXPECT_EQ(r.consumed, 0u);
  expect_stays_failed(s, expected);
}

TEST(ScannerTest, MaxLengthForFrontendTypes) {
  const Limits l;
  for (char t : {'S', 'H', 'X', 'C', 'D', 'E', 'c'}) {
    EXPECT_EQ(MessageScanner::max_length_for(Direction::frontend, l, t), l.max_small_length) << t;
  }
  EXPECT_EQ(MessageScanner::max_length_for(Direction::frontend, l, 'p'), l.max_auth_length);
  for (char t : {'Q', 'P', 'B', 'F', 'd', 'f'}) {
    EXPECT_EQ(MessageScanner::max_length_for(Direction::frontend, l, t), l.max_message_length) << t;
  }
  for (char t : {'Z', 'R', 'T', 'A', 'x', '\0', '\xff'}) {
    EXPECT_EQ(MessageScanner::max_length_for(Direction::frontend, l, t), 0u) << t;
  }
}

TEST(ScannerTest, MaxLengthForBackendTypes) {
  const Limits l;
  for (char t : {'T', 'D', 'd', 'V', 'E', 'N', 'A'}) {
    EXPECT_EQ(MessageScanner::max_length_for(Direction::backend, l, t), l.max_message_length) << t;
  }
  for (char t : {'R', 'K', 'S', 'Z', 'C', 'I', '1', '2', '3', 'n', 's', 'G', 'H', 'W', 'c', 'v'}) {
    EXPECT_EQ(MessageScanner::max_length_for(Direction::backend, l, t), l.max_small_backend_length)
        << t;
  }
  for (char t : {'Q', 'P', 'B', 'p', 'X', 'x', '\0'}) {
    EXPECT_EQ(MessageScanner::max_length_for(Direction::backend, l, t), 0u) << t;
  }
  // ParameterDescription: room for 65,535 parameter types (length + count + OIDs).
  EXPECT_EQ(MessageScanner::max_length_for(Direction::backend, l, 't'), 4u + 2u + 4u * 65535u);
}

TEST(ScannerTest, WantedMessageWhole) {
  auto s = frontend();
  const Bytes q = frame('Q', lit("SELECT 1\0"));
  Bytes data = concat({q, Bytes{'S', 0, 0}});
  const ScanResult r = s.feed(data);
  ASSERT_EQ(r.kind, ScanKind::message);
  EXPECT_EQ(r.type, 'Q');
  EXPECT_EQ(r.length, 13u);
  EXPECT_EQ(r.consumed, 14u);
  EXPECT_EQ(r.body.data(), data.data() + 5);
  EXPECT_EQ(r.body.size(), 9u);
  EXPECT_TRUE(s.at_boundary());
}

TEST(ScannerTest, WantedMessageIncompleteReportsBytesNeeded) {
  auto s = frontend();
  const Bytes q = frame('Q', Bytes(100, 'a'));
  for (std::size_t k = 0; k < q.size(); ++k) {
    const ScanResult r = s.feed(std::span(q).first(k));
    ASSERT_EQ(r.kind, ScanKind::need_more) << k;
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(s.bytes_needed(), k < 5 ? 5u : q.size()) << k;
  }
  EXPECT_EQ(s.feed(q).kind, ScanKind::message);
  EXPECT_EQ(s.bytes_needed(), 0u);
}

TEST(ScannerTest, EmptyBodyMessage) {
  auto s = frontend(type_set({'S'}));
  const Bytes sync = frame('S', {});
  const ScanResult r = s.feed(sync);
  ASSERT_EQ(r.kind, ScanKind::message);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(r.consumed, 5u);
}

TEST(ScannerTest, SkipFromHeaderOnly) {
  // A 1 MB CopyData that is not wanted: relayed piece by piece, never held whole.
  auto s = frontend();
  const std::uint32_t body = 1u << 20;
  const Bytes head = header('d', body + 4);
  for (std::size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(s.feed(std::span(head).first(k)).kind, ScanKind::need_more);
  }
  ScanResult r = s.feed(head);
  ASSERT_EQ(r.kind, ScanKind::skip);
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_TRUE(r.first_piece);
  EXPECT_FALSE(r.last_piece);
  EXPECT_EQ(r.type, 'd');
  EXPECT_EQ(r.length, body + 4);
  EXPECT_FALSE(s.at_boundary());

  EXPECT_EQ(s.feed({}).kind, ScanKind::need_more);
  const Bytes chunk(4096, 0x5a);  // looks like an invalid type byte; must not matter
  std::size_t left = body;
  while (left > 0) {
    r = s.feed(std::span(chunk).first(std::min<std::size_t>(chunk.size(), left)));
    ASSERT_EQ(r.kind, ScanKind::skip);
    EXPECT_FALSE(r.first_piece);
    EXPECT_EQ(r.type, 'd');
    left -= r.consumed;
    EXPECT_EQ(r.last_piece, left == 0);
  }
  EXPECT_TRUE(s.at_boundary());
  // The next message starts cleanly.
  EXPECT_EQ(s.feed(frame('Q', Bytes{0})).kind, ScanKind::message);
}

TEST(ScannerTest, SkipPieceStopsAtMessageEnd) {
  auto s = frontend();
  const Bytes data = concat({frame('S', {}), frame('d', Bytes(3, 1)), frame('Q', Bytes{0})});
  ScanResult r = s.feed(data);
  ASSERT_EQ(r.kind, ScanKind::skip);
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_TRUE(r.first_piece && r.last_piece);
  r = s.feed(std::span(data).subspan(5));
  ASSERT_EQ(r.kind, ScanKind::skip);
  EXPECT_EQ(r.consumed, 8u);
  EXPECT_TRUE(r.first_piece && r.last_piece);
  r = s.feed(std::span(data).subspan(13));
  EXPECT_EQ(r.kind, ScanKind::message);
}

TEST(ScannerTest, SetWantedTakesEffectAtNextMessage) {
  auto s = frontend(TypeSet{});
  const Bytes q = frame('Q', Bytes{0});
  EXPECT_EQ(s.feed(q).kind, ScanKind::skip);
  s.set_wanted(type_set({'Q'}));
  EXPECT_EQ(s.feed(q).kind, ScanKind::message);
}

TEST(ScannerTest, LengthBelowFour) {
  for (std::uint32_t len : {0u, 1u, 3u}) {
    expect_error(frontend(), header('Q', len), errc::length_too_small);
    expect_error(frontend(TypeSet{}), header('S', len), errc::length_too_small);
  }
}

TEST(ScannerTest, SmallMessageCap) {
  // Exactly at the cap is fine (need_more for the body); one above is refused up front.
  auto ok = frontend(type_set({'S'}));
  EXPECT_EQ(ok.feed(header('S', 10'000)).kind, ScanKind::need_more);
  EXPECT_EQ(ok.bytes_needed(), 10'001u);
  for (char t : {'S', 'H', 'X', 'C', 'D', 'E', 'c'}) {
    expect_error(frontend(), header(t, 10'001), errc::message_too_large);
  }
  expect_error(frontend(), header('p', 65'536), errc::message_too_large);
  EXPECT_EQ(frontend().feed(header('p', 65'535)).kind, ScanKind::need_more);
  expect_error(MessageScanner(Direction::backend, {}, {}), header('Z', 30'001),
               errc::message_too_large);
}

TEST(ScannerTest, TwoGibLengthPrefix) {
  expect_error(frontend(), header('Q', 0x80000000u), errc::message_too_large);
  expect_error(frontend(TypeSet{}), header('d', 0xffffffffu), errc::message_too_large);
  expect_error(MessageScanner(Direction::backend, {}, {}), header('D', 0x80000000u),
               errc::message_too_large);
}

TEST(ScannerTest, ConfiguredMaximum) {
  Limits l;
  l.max_message_length = 1000;
  expect_error(frontend(TypeSet{}, l), header('Q', 1001), errc::message_too_large);
  EXPECT_EQ(frontend(TypeSet{}, l).feed(header('Q', 1000)).kind, ScanKind::skip);
}

TEST(ScannerTest, UnknownTypeFailsOnFirstByte) {
  expect_error(frontend(), Bytes{'Z'}, errc::unknown_message_type);
  expect_error(frontend(), frame('Z', Bytes{'I'}), errc::unknown_message_type);
  expect_error(frontend(), Bytes{0, 0, 0, 0, 8}, errc::unknown_message_type);
  expect_error(MessageScanner(Direction::backend, {}, {}), frame('Q', Bytes{0}),
               errc::unknown_message_type);
}

TEST(ScannerTest, TypeSet) {
  const auto s = type_set({'Q', '\xff', '\0'});
  EXPECT_TRUE(s[static_cast<unsigned char>('Q')]);
  EXPECT_TRUE(s[255]);
  EXPECT_TRUE(s[0]);
  EXPECT_EQ(s.count(), 3u);
}

TEST(ScannerTest, FeedDoesNotAllocate) {
  Bytes stream;
  for (int i = 0; i < 50; ++i) {
    append(stream, frame('Q', Bytes(100, 'a')));
    append(stream, frame('d', Bytes(5000, 'b')));
    append(stream, frame('S', {}));
  }
  append(stream, header('Z', 5));
  auto s = frontend();
  const std::size_t before = g_allocations.load();
  std::size_t pos = 0, results = 0;
  for (std::size_t step = 0; step < stream.size() + 7; step += 7) {
    const std::size_t end = std::min(step, stream.size());
    for (;;) {
      const ScanResult r = s.feed(std::span(stream).subspan(pos, end - pos));
      ++results;
      if (r.kind == ScanKind::need_more || r.kind == ScanKind::error) break;
      pos += r.consumed;
    }
  }
  EXPECT_TRUE(s.failed());
  EXPECT_EQ(g_allocations.load(), before);
  EXPECT_GT(results, 1000u);
}

}  // namespace
}  // namespace pgshift::wire::test
