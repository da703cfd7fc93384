// pool/server_params: which startup parameters key a pool, and the set_config() statement
// that brings a server to a client's values.
#include "pool/server_params.hpp"

#include <gtest/gtest.h>

namespace pgshift::pool {
namespace {

TEST(ServerParamsTest, KeyHasOptionsValuesAndOtherNamesOnly) {
  const StartupParams a = {
      {"application_name", "one"}, {"client_encoding", "UTF8"}, {"options", "-c geqo=off"}};
  const StartupParams b = {
      {"client_encoding", "LATIN1"}, {"application_name", "two"}, {"options", "-c geqo=off"}};
  EXPECT_EQ(pool_key_parameters(a), pool_key_parameters(b)) << "values of tracked ones differ";
  StartupParams c = a;
  c[2].second = "-c geqo=on";
  EXPECT_NE(pool_key_parameters(a), pool_key_parameters(c)) << "options differ";
  const StartupParams d = {{"application_name", "one"}};
  EXPECT_NE(pool_key_parameters(a), pool_key_parameters(d)) << "names differ";
  EXPECT_EQ(pool_key_parameters({{"DateStyle", "ISO"}}),
            pool_key_parameters({{"datestyle", "SQL"}}));
  EXPECT_TRUE(is_keyed_parameter("Log_Connections"));
  EXPECT_FALSE(is_keyed_parameter("search_path"));
}

TEST(ServerParamsTest, TrackedNamesAreLowerCaseAndLastValueWins) {
  const StartupParams t = tracked_parameters(
      {{"DateStyle", "ISO"}, {"options", "-c x=1"}, {"datestyle", "SQL"}, {"TimeZone", "UTC"}});
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0], (std::pair<std::string, std::string>{"datestyle", "SQL"}));
  EXPECT_EQ(t[1], (std::pair<std::string, std::string>{"timezone", "UTC"}));
}

TEST(ServerParamsTest, StatementSetsOnlyWhatDiffers) {
  ParameterState state;
  state.defaults = {{"application_name", "a"}, {"timezone", "UTC"}};
  state.reset();
  EXPECT_EQ(parameter_sync_statement(state, {{"application_name", "a"}, {"timezone", "UTC"}}), "");
  EXPECT_EQ(
      parameter_sync_statement(state, {{"application_name", "it's \\ b"}, {"timezone", "UTC"}}),
      "SELECT pg_catalog.set_config(E'application_name', E'it''s \\\\ b', false)");
  EXPECT_EQ(parameter_sync_statement(state, {{"timezone", "UTC"}}),
            "SELECT pg_catalog.set_config(E'application_name', NULL, false)");
  apply_parameter_sync(state, {{"application_name", "b"}, {"timezone", "UTC"}});
  EXPECT_EQ(parameter_sync_statement(state, {{"application_name", "b"}, {"timezone", "UTC"}}), "");
  EXPECT_FALSE(needs_parameter_sync(state, {{"application_name", "b"}, {"timezone", "UTC"}}));
  EXPECT_TRUE(needs_parameter_sync(state, {{"application_name", "c"}, {"timezone", "UTC"}}));
  EXPECT_TRUE(needs_parameter_sync(state, {{"application_name", "b"}}));
  state.unknown = true;
  EXPECT_TRUE(needs_parameter_sync(state, {{"application_name", "b"}, {"timezone", "UTC"}}));
  state.reset();
  EXPECT_EQ(state.current, state.defaults);
  EXPECT_FALSE(state.unknown);
}

}  // namespace
}  // namespace pgshift::pool
