#include <gtest/gtest.h>

#include "config/config.hpp"

namespace pgshift::config {
namespace {

template <class E>
void expect_round_trip(std::initializer_list<std::pair<E, std::string_view>> cases) {
  for (auto [value, name] : cases) {
    EXPECT_EQ(to_string(value), name);
    E parsed{};
    ASSERT_TRUE(from_string(name, parsed)) << name;
    EXPECT_EQ(parsed, value) << name;
  }
  E untouched = cases.begin()->first;
  EXPECT_FALSE(from_string("no-such-value", untouched));
  EXPECT_EQ(untouched, cases.begin()->first);
}

TEST(Enums, ConfigEnumsUseLowercaseDashedNames) {
  expect_round_trip<ClientTlsMode>({{ClientTlsMode::disable, "disable"},
                                    {ClientTlsMode::allow, "allow"},
                                    {ClientTlsMode::require, "require"}});
  expect_round_trip<UpstreamTlsMode>({{UpstreamTlsMode::disable, "disable"},
                                      {UpstreamTlsMode::require, "require"},
                                      {UpstreamTlsMode::verify_ca, "verify-ca"},
                                      {UpstreamTlsMode::verify_full, "verify-full"}});
  expect_round_trip<ClientAuthMethod>({{ClientAuthMethod::scram_sha_256, "scram-sha-256"},
                                       {ClientAuthMethod::md5, "md5"},
                                       {ClientAuthMethod::trust, "trust"}});
  expect_round_trip<PoolMode>(
      {{PoolMode::session, "session"}, {PoolMode::transaction, "transaction"}});
  expect_round_trip<SyncMode>(
      {{SyncMode::none, "none"}, {SyncMode::logical, "logical"}, {SyncMode::mirror, "mirror"}});
}

TEST(Enums, ParsingIsCaseSensitive) {
  UpstreamTlsMode m = UpstreamTlsMode::disable;
  EXPECT_FALSE(from_string("Verify-Full", m));
  EXPECT_FALSE(from_string("verify_full", m));
}

TEST(Enums, PhasesRoundTrip) {
  for (auto p : {Phase::source_only, Phase::sync, Phase::cutover, Phase::target_primary,
                 Phase::target_only}) {
    auto parsed = phase_from_string(to_string(p));
    ASSERT_TRUE(parsed.has_value()) << to_string(p);
    EXPECT_EQ(*parsed, p);
  }
  EXPECT_EQ(to_string(Phase::source_only), "source_only");
  EXPECT_EQ(to_string(Phase::target_primary), "target_primary");
  EXPECT_FALSE(phase_from_string("source-only").has_value());
  EXPECT_FALSE(phase_from_string("").has_value());
}

TEST(Enums, OutOfRangeValueIsUnknown) {
  EXPECT_EQ(to_string(static_cast<PoolMode>(7)), "unknown");
}

}  // namespace
}  // namespace pgshift::config
