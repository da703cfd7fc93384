// Mock SCRAM salts for users without a usable secret (issue 16.6): deterministic per user
// and process secret, unrelated between users, so a salt does not reveal whether a user
// exists (PostgreSQL's scram_mock_salt does the same with its cluster's mock nonce).
#include <gtest/gtest.h>

#include <array>
#include <set>

#include "wire/auth.hpp"

namespace pgshift::wire::test {
namespace {

TEST(ScramMockSaltTest, SameUserSameSaltDifferentUsersDiffer) {
  std::array<std::uint8_t, 32> secret{};
  random_bytes(secret);
  const std::string a1 = scram_mock_salt("nobody", secret);
  const std::string a2 = scram_mock_salt("nobody", secret);
  EXPECT_EQ(a1.size(), 16u);
  EXPECT_EQ(a1, a2) << "an unknown user must see the same salt on every attempt";
  std::set<std::string> salts;
  for (const char* user : {"nobody", "nobody2", "Nobody", "", "app", "postgres"}) {
    salts.insert(scram_mock_salt(user, secret));
  }
  EXPECT_EQ(salts.size(), 6u) << "different users must get different salts";
}

TEST(ScramMockSaltTest, DependsOnTheProcessSecret) {
  std::array<std::uint8_t, 32> one{}, two{};
  random_bytes(one);
  random_bytes(two);
  EXPECT_NE(scram_mock_salt("nobody", one), scram_mock_salt("nobody", two));
}

// A mock secret fails the proof exactly like a wrong password: the exchange runs to the end
// (server-first with the mock salt and 4096 iterations), then auth_failed.
TEST(ScramMockSaltTest, MockSecretFailsAtTheProof) {
  std::array<std::uint8_t, 32> secret{};
  random_bytes(secret);
  const std::string salt = scram_mock_salt("nobody", secret);
  ScramServer server(make_scram_secret(random_nonce(), salt, kScramMockIterations), random_nonce());
  ScramClient client("a guess", random_nonce());
  std::string server_first, client_final, server_final;
  ASSERT_FALSE(server.handle_client_first(client.client_first(), server_first));
  EXPECT_NE(server_first.find(",i=4096"), std::string::npos) << server_first;
  ASSERT_FALSE(client.handle_server_first(server_first, client_final));
  EXPECT_EQ(server.handle_client_final(client_final, server_final), errc::auth_failed);
}

}  // namespace
}  // namespace pgshift::wire::test
