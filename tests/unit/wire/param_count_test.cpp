// 16-bit counts are unsigned: Parse, Bind and ParameterDescription carry Int16 counts that
// PostgreSQL reads with pq_getmsgint(msg, 2), i.e. 0..65,535. A statement may have up to
// 65,535 parameters (issue 14.6); 32,768 and above must not look negative.
#include <gtest/gtest.h>

#include "test_bytes.hpp"
#include "wire/builder.hpp"
#include "wire/messages.hpp"
#include "wire/scanner.hpp"

namespace pgshift::wire::test {
namespace {

constexpr std::uint32_t kCounts[] = {0, 1, 32767, 32768, 65535};

Bytes parse_body(std::uint32_t count) {
  Bytes b = lit("s\0SELECT\0");
  put16(b, static_cast<std::uint16_t>(count));
  for (std::uint32_t i = 0; i < count; ++i) put32(b, 23 + (i % 3));
  return b;
}

// Bind with `count` parameters: one format code (text), values "i" (every 7th NULL), one
// result format.
Bytes bind_body(std::uint32_t count) {
  Bytes b = lit("p\0s\0");
  put16(b, 1);
  put16(b, 0);
  put16(b, static_cast<std::uint16_t>(count));
  for (std::uint32_t i = 0; i < count; ++i) {
    if (i % 7 == 0) {
      put32(b, 0xffffffff);
      continue;
    }
    const std::string v = std::to_string(i);
    put32(b, static_cast<std::uint32_t>(v.size()));
    b.insert(b.end(), v.begin(), v.end());
  }
  put16(b, 1);
  put16(b, 1);
  return b;
}

Bytes parameter_description_body(std::uint32_t count) {
  Bytes b;
  put16(b, static_cast<std::uint16_t>(count));
  for (std::uint32_t i = 0; i < count; ++i) put32(b, 25);
  return b;
}

TEST(ParamCountTest, ParseReadsCountAsUnsigned) {
  for (std::uint32_t count : kCounts) {
    const Bytes b = parse_body(count);
    Parse p;
    ASSERT_FALSE(parse_parse(b, p)) << count;
    ASSERT_EQ(p.param_types.size(), count);
    if (count > 0) {
      EXPECT_EQ(p.param_types.back(), 23 + ((count - 1) % 3));
    }
    // Rebuilt byte for byte (the re-prepare path of transaction pooling uses the builder).
    Bytes built;
    parse(built, p.statement, p.query, p.param_types);
    EXPECT_EQ(built, frame('P', b)) << count;
    // One type short is truncated, never read as a smaller or negative count.
    if (count > 0) {
      const Bytes shorter(b.begin(), b.end() - 4);
      EXPECT_EQ(parse_parse(shorter, p), errc::truncated_message) << count;
    }
  }
}

TEST(ParamCountTest, BindReadsCountsAsUnsigned) {
  for (std::uint32_t count : kCounts) {
    const Bytes b = bind_body(count);
    Bind bind;
    ASSERT_FALSE(parse_bind(b, bind)) << count;
    EXPECT_EQ(bind.portal, "p");
    EXPECT_EQ(bind.statement, "s");
    ASSERT_EQ(bind.params.size(), count);
    EXPECT_EQ(bind.param_formats, std::vector<std::int16_t>{0});
    EXPECT_EQ(bind.result_formats, std::vector<std::int16_t>{1});
    if (count > 1) {
      EXPECT_TRUE(bind.params[0].null);
      EXPECT_EQ(std::string(bind.params[1].bytes.begin(), bind.params[1].bytes.end()), "1");
    }
    BindNames names;
    EXPECT_FALSE(parse_bind_names(b, names));
  }
}

TEST(ParamCountTest, BindWith65535FormatCodes) {
  Bytes b = lit("\0\0");
  put16(b, 65535);
  for (int i = 0; i < 65535; ++i) put16(b, 1);
  put16(b, 0);
  put16(b, 65535);
  for (int i = 0; i < 65535; ++i) put16(b, 0);
  Bind bind;
  ASSERT_FALSE(parse_bind(b, bind));
  EXPECT_EQ(bind.param_formats.size(), 65535u);
  EXPECT_EQ(bind.result_formats.size(), 65535u);
}

TEST(ParamCountTest, BindRejectsMalformed) {
  Bind bind;
  Bytes lying = lit("\0\0");
  put16(lying, 0);
  put16(lying, 40000);  // 40,000 values claimed, none carried: no big allocation
  put16(lying, 0);
  EXPECT_EQ(parse_bind(lying, bind), errc::truncated_message);
  EXPECT_EQ(bind.params.capacity(), 0u);
  Bytes bad_length = lit("\0\0");
  put16(bad_length, 0);
  put16(bad_length, 1);
  put32(bad_length, 0xfffffffe);  // -2
  put16(bad_length, 0);
  EXPECT_EQ(parse_bind(bad_length, bind), errc::malformed_message);
  Bytes extra = bind_body(3);
  extra.push_back(0);
  EXPECT_EQ(parse_bind(extra, bind), errc::malformed_message);
  const Bytes whole = bind_body(3);
  for (std::size_t k = 0; k < whole.size(); ++k) {
    const Bytes prefix(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(k));
    EXPECT_TRUE(parse_bind(prefix, bind)) << "prefix " << k;
  }
}

TEST(ParamCountTest, ParameterDescriptionReadsCountAsUnsigned) {
  for (std::uint32_t count : kCounts) {
    const Bytes b = parameter_description_body(count);
    std::vector<std::uint32_t> types;
    ASSERT_FALSE(parse_parameter_description(b, types)) << count;
    EXPECT_EQ(types.size(), count);
    Bytes built;
    parameter_description(built, types);
    EXPECT_EQ(built, frame('t', b));
  }
  std::vector<std::uint32_t> types;
  Bytes lying;
  put16(lying, 32768);
  EXPECT_EQ(parse_parameter_description(lying, types), errc::truncated_message);
}

// The scanner relays ParameterDescription for every legal count (it used to cap 't' at the
// 30,000-byte small-message limit: 7,499 parameters).
TEST(ParamCountTest, ScannerPassesLargeParameterDescription) {
  for (std::uint32_t count : kCounts) {
    const Bytes msg = frame('t', parameter_description_body(count));
    for (bool wanted : {false, true}) {
      MessageScanner scanner(Direction::backend, Limits{},
                             wanted ? type_set({'t'}) : MessageScanner::TypeSet{});
      const ScanResult r = scanner.feed(msg);
      ASSERT_NE(r.kind, ScanKind::error) << count << ": " << r.error.message();
      EXPECT_EQ(r.consumed, msg.size());
      EXPECT_EQ(r.kind, wanted ? ScanKind::message : ScanKind::skip);
    }
  }
  // One byte more than the largest legal ParameterDescription is refused.
  MessageScanner scanner(Direction::backend, Limits{}, {});
  const Bytes too_big = header('t', 4 + 2 + 4 * 65535 + 1);
  EXPECT_EQ(scanner.feed(too_big).error, errc::message_too_large);
}

TEST(ParamCountTest, ScannerPassesLargeParseAndBind) {
  for (std::uint32_t count : {32767u, 32768u, 65535u}) {
    const Bytes stream = concat({frame('P', parse_body(count)), frame('B', bind_body(count))});
    MessageScanner scanner(Direction::frontend, Limits{}, type_set({'P', 'B'}));
    std::size_t pos = 0;
    int messages = 0;
    while (pos < stream.size()) {
      const ScanResult r = scanner.feed(std::span(stream).subspan(pos));
      ASSERT_EQ(r.kind, ScanKind::message) << count;
      ++messages;
      pos += r.consumed;
    }
    EXPECT_EQ(messages, 2);
  }
}

}  // namespace
}  // namespace pgshift::wire::test
