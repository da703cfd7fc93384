// PoolStats as JSON values, both ways (GET /v1/pools and `pgshift ctl pools`), and as the text
// table and log line.
#include "pool/pool_stats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <span>
#include <string>
#include <vector>

namespace pgshift::pool {
namespace {

using namespace std::chrono_literals;

PoolStats sample() {
  PoolStats s;
  s.route = "auth";
  s.side = "target";
  s.database = "auth_db";
  s.user = "app\"\n1";
  s.mode = "session";
  s.size = 20;
  s.reserve = 2;
  s.total = 7;
  s.idle = 2;
  s.active = 5;
  s.waiting = 1;
  s.acquires = 1000;
  s.connect_failures = 4;
  s.reset_failures = 1;
  s.total_wait_time = std::chrono::microseconds(123456);
  return s;
}

TEST(PoolStatsJson, ObjectHasEveryFieldInDisplayOrder) {
  const auto o = to_json_object(sample());
  std::vector<std::string> keys;
  for (const auto& [k, v] : o) keys.emplace_back(k);
  const std::vector<std::string> expected{"route",
                                          "side",
                                          "database",
                                          "user",
                                          "mode",
                                          "size",
                                          "reserve",
                                          "total",
                                          "idle",
                                          "active",
                                          "waiting",
                                          "connecting",
                                          "closing",
                                          "acquires",
                                          "waits",
                                          "connects",
                                          "handovers",
                                          "connect_failures",
                                          "wait_timeouts",
                                          "closed",
                                          "dead",
                                          "health_checks",
                                          "health_check_failures",
                                          "resets",
                                          "reset_failures",
                                          "total_wait_time_us"};
  EXPECT_EQ(keys, expected);
  EXPECT_EQ(o.at("user").as_string(), "app\"\n1");
  EXPECT_EQ(o.at("total_wait_time_us").as_int64(), 123456);
  // The serialized form is the same object.
  EXPECT_EQ(boost::json::parse(to_json(sample())), boost::json::value(o));
  const std::vector<PoolStats> two{sample(), sample()};
  EXPECT_EQ(to_json_array(two).size(), 2u);
  EXPECT_EQ(to_json(std::span<const PoolStats>(two)), boost::json::serialize(to_json_array(two)));
}

TEST(PoolStatsJson, RoundTripsThroughText) {
  const PoolStats s = sample();
  const auto back = from_json_object(boost::json::parse(to_json(s)).as_object());
  EXPECT_EQ(to_log_line(back), to_log_line(s));
  EXPECT_EQ(back.user, s.user);
  EXPECT_EQ(back.total_wait_time, s.total_wait_time);
}

TEST(PoolStatsJson, MissingOrMistypedMembersKeepDefaults) {
  const auto v = boost::json::parse(
      R"({"route":"r","side":7,"size":"twenty","active":3,"unknown":1,"total_wait_time_us":2.5})");
  const auto s = from_json_object(v.as_object());
  EXPECT_EQ(s.route, "r");
  EXPECT_EQ(s.side, "");
  EXPECT_EQ(s.size, 0);
  EXPECT_EQ(s.active, 3);
  EXPECT_EQ(s.total_wait_time.count(), 0);
}

TEST(PoolStatsTest, FormatsTextAndJson) {
  PoolStats s;
  s.route = "auth";
  s.side = "source";
  s.database = "auth_db";
  s.user = "app\"1";
  s.mode = "transaction";
  s.size = 20;
  s.total = 7;
  s.idle = 2;
  s.active = 5;
  s.total_wait_time = 1500us;
  const std::vector<PoolStats> pools{s};
  const auto text = format_pools_text(pools);
  EXPECT_NE(text.find("pool"), std::string::npos);
  EXPECT_NE(text.find("auth/source/auth_db/app\"1 | transaction"), std::string::npos) << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 2);
  const auto json = to_json(std::span<const PoolStats>(pools));
  EXPECT_NE(json.find("\"user\":\"app\\\"1\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"total\":7"), std::string::npos) << json;
  EXPECT_NE(json.find("\"total_wait_time_us\":1500"), std::string::npos) << json;
  EXPECT_EQ(json.front(), '[');
  EXPECT_EQ(json.back(), ']');
  const auto line = to_log_line(s);
  EXPECT_EQ(line.rfind("pool=auth/source/auth_db/app\"1 mode=transaction size=20", 0), 0u) << line;
}

}  // namespace
}  // namespace pgshift::pool
