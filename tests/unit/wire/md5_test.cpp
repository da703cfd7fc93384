// MD5 password math and SCRAM secrets. Expected values were computed independently with
// Python's hashlib (md5, pbkdf2_hmac, hmac) and base64.
#include <gtest/gtest.h>

#include <array>
#include <set>

#include "wire/auth.hpp"
#include "wire/base64.hpp"

namespace pgshift::wire {
namespace {

constexpr std::array<std::uint8_t, 4> kSalt{0x01, 0x02, 0x03, 0x04};

TEST(Md5Test, StoredHash) {
  // The well-known pg_authid value for user postgres, password "password".
  EXPECT_EQ(md5_stored_hash("postgres", "password"), "md532e12f215ba27cb750c9e093ce4b5127");
  EXPECT_EQ(md5_stored_hash("user", "password"), "md54d45974e13472b5a0be3533de4666414");
}

TEST(Md5Test, PasswordResponse) {
  EXPECT_EQ(md5_password_response("postgres", "password", kSalt),
            "md598511ceaec347a656f032c7f2a16ef17");
  const std::array<std::uint8_t, 4> salt2{0x93, 0xa5, 0x1e, 0x7c};
  EXPECT_EQ(md5_password_response("postgres", "password", salt2),
            "md58bfc2f2d0a2d70f68a7023bcb82ba16c");
}

TEST(Md5Test, ResponseFromStoredHash) {
  EXPECT_EQ(md5_response_from_stored("md532e12f215ba27cb750c9e093ce4b5127", kSalt),
            "md598511ceaec347a656f032c7f2a16ef17");
  // Not an md5 hash: empty, so the comparison with the client's response fails.
  EXPECT_EQ(md5_response_from_stored("password", kSalt), "");
  EXPECT_EQ(md5_response_from_stored("md532e12f215ba27cb750c9e093ce4b512", kSalt), "");
  EXPECT_EQ(md5_response_from_stored("md532e12f215ba27cb750c9e093ce4b512g", kSalt), "");
  // Upper-case hex is the same hash.
  EXPECT_EQ(md5_response_from_stored("md532E12F215BA27CB750C9E093CE4B5127", kSalt),
            "md598511ceaec347a656f032c7f2a16ef17");
  EXPECT_EQ(md5_response_from_stored("SCRAM-SHA-256$4096:...", kSalt), "");
}

// RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, i=4096.
constexpr std::string_view kRfcSecret =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

TEST(ScramSecretTest, MakeMatchesKnownSecret) {
  const auto salt = detail::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==");
  ASSERT_TRUE(salt);
  const ScramSecret s = make_scram_secret("pencil", *salt, 4096);
  EXPECT_EQ(format_scram_secret(s), kRfcSecret);
  ASSERT_TRUE(s.client_key);
  EXPECT_EQ(detail::base64_encode(*s.client_key), "pg/JI9Z+hkSpLRa5btpe9GVrDHJcSEN0viVTVXaZbos=");
}

TEST(ScramSecretTest, ParseFormatRoundTrip) {
  const auto parsed = parse_scram_secret(kRfcSecret);
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->iterations, 4096);
  EXPECT_EQ(parsed->salt.size(), 16u);
  EXPECT_FALSE(parsed->client_key);
  EXPECT_EQ(format_scram_secret(*parsed), kRfcSecret);

  const ScramSecret made = make_scram_secret("s3cr3t", "0123456789abcdef", 10);
  const auto again = parse_scram_secret(format_scram_secret(made));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->iterations, 10);
  EXPECT_EQ(again->salt, made.salt);
  EXPECT_EQ(again->stored_key, made.stored_key);
  EXPECT_EQ(again->server_key, made.server_key);
}

TEST(ScramSecretTest, ParseRejectsMalformed) {
  const std::string k(kRfcSecret);
  for (const std::string& bad : {
           std::string(""),
           std::string("md532e12f215ba27cb750c9e093ce4b5127"),
           "SCRAM-SHA-1" + k.substr(13),
           k.substr(0, k.size() - 1),                                     // key not 32 bytes
           k.substr(0, k.find('$', 14)),                                  // no keys
           std::string("SCRAM-SHA-256$0:") + k.substr(k.find(':') + 1),   // zero iterations
           std::string("SCRAM-SHA-256$-1:") + k.substr(k.find(':') + 1),  // negative
           std::string("SCRAM-SHA-256$99999999999:") + k.substr(k.find(':') + 1),  // overflow
           std::string("SCRAM-SHA-256$4096x:") + k.substr(k.find(':') + 1),
           std::string("SCRAM-SHA-256$4096::") + k.substr(k.find('$', 14)),  // empty salt
           std::string("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=") + k.substr(k.find('$', 14)),
           k + "$",
           k + ":",
       }) {
    EXPECT_FALSE(parse_scram_secret(bad)) << bad;
  }
}

TEST(ScramSecretTest, IterationsBelowOneBecomeOne) {
  EXPECT_EQ(make_scram_secret("p", "salt", 0).iterations, 1);
}

TEST(RandomTest, NonceFormat) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    const std::string n = random_nonce();
    EXPECT_EQ(n.size(), 24u);
    EXPECT_EQ(n.find(','), std::string::npos);
    const auto raw = detail::base64_decode(n);
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->size(), 18u);
    seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 100u);
}

TEST(Base64Test, RoundTripAndStrictness) {
  for (std::string_view s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    const std::string e = detail::base64_encode(s);
    EXPECT_EQ(detail::base64_decode(e), std::string(s));
  }
  EXPECT_EQ(detail::base64_encode(std::string_view("foobar")), "Zm9vYmFy");
  EXPECT_EQ(detail::base64_encode(std::string_view("fo")), "Zm8=");
  for (std::string_view bad : {"Zm9", "Zm9v=", "Z===", "====", "Zm=v", "Zm9v\n", "Zm!v"}) {
    EXPECT_FALSE(detail::base64_decode(bad)) << bad;
  }
}

}  // namespace
}  // namespace pgshift::wire
