#include "wire/startup.hpp"

#include <gtest/gtest.h>

#include "test_bytes.hpp"
#include "vectors.hpp"

namespace pgshift::wire::test {
namespace {

StartupResult decode(const Bytes& b) {
  return decode_startup(b, Limits{});
}

void expect_error(const Bytes& b, errc expected) {
  const StartupResult r = decode(b);
  EXPECT_EQ(r.kind, StartupKind::error);
  EXPECT_EQ(r.error, expected) << r.error.message();
  EXPECT_EQ(r.consumed, 0u);
}

// A packet with a raw body (everything after the length field).
Bytes packet(std::uint32_t code, const Bytes& payload) {
  Bytes b;
  put32(b, static_cast<std::uint32_t>(payload.size() + 8));
  put32(b, code);
  append(b, payload);
  return b;
}

TEST(StartupTest, StartupMessage) {
  Bytes b = startup_packet({{"user", "alice"}, {"database", "auth_db"}, {"options", "-c x=1"}});
  append(b, Bytes{'Q', 0, 0});  // the next message is not consumed
  const StartupResult r = decode(b);
  ASSERT_EQ(r.kind, StartupKind::startup);
  EXPECT_EQ(r.consumed, b.size() - 3);
  EXPECT_EQ(r.startup.protocol, kProtocol3);
  ASSERT_EQ(r.startup.params.size(), 3u);
  EXPECT_EQ(r.startup.params[0], (std::pair<std::string, std::string>{"user", "alice"}));
  EXPECT_EQ(r.startup.params[2].second, "-c x=1");
  ASSERT_NE(r.startup.find("database"), nullptr);
  EXPECT_EQ(*r.startup.find("database"), "auth_db");
  EXPECT_EQ(r.startup.find("replication"), nullptr);
}

TEST(StartupTest, NewerMinorVersionIsAccepted) {
  const StartupResult r = decode(startup_packet({{"user", "u"}, {"_pq_.x", "1"}}, 0x00030002));
  ASSERT_EQ(r.kind, StartupKind::startup);
  EXPECT_EQ(r.startup.protocol, 0x00030002u);
}

TEST(StartupTest, EmptyValuesAreKept) {
  const StartupResult r = decode(startup_packet({{"user", "u"}, {"database", ""}}));
  ASSERT_EQ(r.kind, StartupKind::startup);
  EXPECT_EQ(*r.startup.find("database"), "");
}

TEST(StartupTest, SslGssAndCancel) {
  StartupResult r = decode(ssl_request_packet());
  EXPECT_EQ(r.kind, StartupKind::ssl_request);
  EXPECT_EQ(r.consumed, 8u);
  r = decode(packet(kGssEncRequestCode, {}));
  EXPECT_EQ(r.kind, StartupKind::gssenc_request);
  EXPECT_EQ(r.consumed, 8u);
  r = decode(cancel_request_packet(77, -1));
  ASSERT_EQ(r.kind, StartupKind::cancel_request);
  EXPECT_EQ(r.consumed, 16u);
  EXPECT_EQ(r.cancel, (CancelKey{77, -1}));
}

TEST(StartupTest, EveryStrictPrefixNeedsMore) {
  for (const Bytes& b : {startup_packet({{"user", "alice"}, {"database", "db"}}),
                         ssl_request_packet(), cancel_request_packet(1, 2)}) {
    for (std::size_t k = 0; k < b.size(); ++k) {
      const Bytes prefix(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(k));
      const StartupResult r = decode(prefix);
      EXPECT_EQ(r.kind, StartupKind::need_more) << k;
      EXPECT_EQ(r.consumed, 0u);
    }
  }
}

TEST(StartupTest, LengthLimits) {
  expect_error(Bytes{0, 0, 0, 4}, errc::length_too_small);
  expect_error(Bytes{0, 0, 0, 7, 0, 3, 0, 0}, errc::length_too_small);
  expect_error(Bytes{0, 0, 0x27, 0x11}, errc::message_too_large);  // 10'001, header alone
  expect_error(Bytes{0x80, 0, 0, 0}, errc::message_too_large);     // 2 GiB
  // Exactly at the limit is fine.
  Bytes big = startup_packet({{"user", "u"}, {"application_name", std::string(9'966, 'a')}});
  ASSERT_EQ(big.size(), 10'000u);
  EXPECT_EQ(decode(big).kind, StartupKind::startup);
}

TEST(StartupTest, SpecialRequestsWithWrongLength) {
  // Refused from the first 8 bytes, before the (bogus) rest arrives.
  expect_error(Bytes{0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2f}, errc::malformed_message);
  expect_error(packet(kSslRequestCode, Bytes(4, 0)), errc::malformed_message);
  expect_error(packet(kGssEncRequestCode, Bytes(1, 0)), errc::malformed_message);
  expect_error(packet(kCancelRequestCode, Bytes(4, 0)), errc::malformed_message);
  expect_error(packet(kCancelRequestCode, Bytes(12, 0)), errc::malformed_message);
}

TEST(StartupTest, UnsupportedProtocols) {
  expect_error(startup_packet({{"user", "u"}}, 0x00020000), errc::unsupported_protocol);
  expect_error(startup_packet({{"user", "u"}}, 0x00040000), errc::unsupported_protocol);
  expect_error(packet(80877105, {}), errc::unsupported_protocol);  // unknown request code
  expect_error(packet(0, Bytes(8, 0)), errc::unsupported_protocol);
}

TEST(StartupTest, MissingUser) {
  expect_error(startup_packet({{"database", "db"}}), errc::malformed_message);
  expect_error(startup_packet({}), errc::malformed_message);
  expect_error(startup_packet({{"user", ""}}), errc::malformed_message);
}

TEST(StartupTest, TruncatedParameterList) {
  // The length field ends the packet before the list does: never read past the length.
  Bytes payload = lit("user\0alice\0");
  expect_error(packet(kProtocol3, payload), errc::malformed_message);  // no final NUL
  payload = lit("user\0ali");
  expect_error(packet(kProtocol3, payload), errc::malformed_message);  // value cut
  payload = lit("user");
  expect_error(packet(kProtocol3, payload), errc::malformed_message);  // key cut
  expect_error(packet(kProtocol3, {}), errc::malformed_message);       // nothing at all
  // A real packet whose length field was shortened by one byte.
  Bytes b = startup_packet({{"user", "alice"}});
  b[3] = static_cast<std::uint8_t>(b[3] - 1);
  expect_error(b, errc::malformed_message);
}

TEST(StartupTest, BytesAfterTerminator) {
  const Bytes payload = lit("user\0u\0\0junk");
  expect_error(packet(kProtocol3, payload), errc::malformed_message);
}

}  // namespace
}  // namespace pgshift::wire::test
