// validate() on a Config built in code, and the ConfigError / line helpers.
#include <gtest/gtest.h>

#include <cmath>

#include "config/load.hpp"
#include "test_util.hpp"

namespace pgshift::config {
namespace {

using test::has_exactly;

Config valid() {
  Config c;
  c.admin.enabled = false;
  c.client_auth.method = ClientAuthMethod::trust;
  Route r;
  r.name = "app";
  r.client_database = "app";
  r.source.host = "db";
  r.source.user = "app";
  c.routes.push_back(r);
  return c;
}

TEST(Validate, ValidConfigHasNoErrors) {
  EXPECT_TRUE(validate(valid()).empty());
}

TEST(Validate, ChecksTheTableRulesOnCodeBuiltConfigs) {
  Config c = valid();
  c.listen.port = 0;
  c.listen.host.clear();
  c.routes[0].pool.size = 0;
  c.routes[0].pool.min_idle = -1;
  c.routes[0].read_split.initial_read_percent = 100.5;
  c.routes[0].source.connect_timeout = Millis{0};
  c.log_level = "loud";
  c.limits.max_message_length = 10;
  EXPECT_TRUE(has_exactly(
      validate(c),
      {
          {"listen.host", 0, "is required"},
          {"listen.port", 0, "must be between 1 and 65535, got '0'"},
          {"routes[0].pool.size", 0, "must be between 1 and 1000000, got '0'"},
          {"routes[0].pool.min_idle", 0, "must be between 0 and 1000000, got '-1'"},
          {"routes[0].read_split.initial_read_percent", 0, "must be between 0 and 100"},
          {"routes[0].read_split.initial_read_percent", 0, "needs a target"},
          {"routes[0].source.connect_timeout_ms", 0, "must be between 1 and 2147483647"},
          {"limits.max_message_length", 0, "must be between 1024 and 1073741824, got '10'"},
          {"log_level", 0, "must be one of: debug, info, warn, error, got 'loud'"},
      }));
}

TEST(Validate, MinIdleMayNotExceedSize) {
  Config c = valid();
  c.routes[0].pool.size = 4;
  c.routes[0].pool.min_idle = 5;
  EXPECT_TRUE(
      has_exactly(validate(c), {{"routes[0].pool.min_idle", 0, "must not exceed pool.size (4)"}}));
}

TEST(Validate, ReadPercentHasAtMostTwoDecimals) {
  Config c = valid();
  c.routes[0].target = c.routes[0].source;
  c.routes[0].target->host = "rds";
  for (double ok : {0.0, 0.01, 12.5, 33.33, 99.99, 100.0}) {
    c.routes[0].read_split.initial_read_percent = ok;
    EXPECT_TRUE(validate(c).empty()) << ok;
  }
  for (double bad : {0.001, 12.345, 99.999}) {
    c.routes[0].read_split.initial_read_percent = bad;
    EXPECT_TRUE(has_exactly(validate(c), {{"routes[0].read_split.initial_read_percent", 0,
                                           "at most two decimal places"}}))
        << bad;
  }
}

TEST(Validate, NotANumberIsOutOfRange) {
  Config c = valid();
  c.routes[0].target = c.routes[0].source;
  c.routes[0].target->host = "rds";
  c.routes[0].read_split.initial_read_percent = std::nan("");
  EXPECT_TRUE(has_exactly(validate(c), {{"routes[0].read_split.initial_read_percent", 0,
                                         "must be between 0 and 100, got 'nan'"}}));
}

TEST(Validate, LinesComeFromTheNearestRecordedAncestor) {
  SourceLines lines{{"routes", 3}, {"routes[0]", 4}, {"routes[0].pool", 9}};
  EXPECT_EQ(line_of(lines, "routes[0].pool.size"), 9);
  EXPECT_EQ(line_of(lines, "routes[0].source.tls.ca_file"), 4);
  EXPECT_EQ(line_of(lines, "routes[1].name"), 3);
  EXPECT_EQ(line_of(lines, "listen.port"), 0);
  EXPECT_EQ(line_of(lines, ""), 0);

  Config c = valid();
  c.routes[0].pool.min_idle = 50;
  EXPECT_TRUE(has_exactly(validate(c, lines),
                          {{"routes[0].pool.min_idle", 9, "must not exceed pool.size (20)"}}));
}

TEST(Validate, ErrorToString) {
  EXPECT_EQ((ConfigError{"routes[0].source.port", 12, "must be 1..65535"}.to_string()),
            "routes[0].source.port (line 12): must be 1..65535");
  EXPECT_EQ((ConfigError{"threads", 0, "bad"}.to_string()), "threads: bad");
  EXPECT_EQ((ConfigError{"", 3, "invalid YAML"}.to_string()), "line 3: invalid YAML");
  EXPECT_EQ((ConfigError{"", 0, "cannot read"}.to_string()), "cannot read");
}

}  // namespace
}  // namespace pgshift::config
