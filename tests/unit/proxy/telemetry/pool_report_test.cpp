// Which pools the periodic log line shows, the lines themselves, the timer, and the pool
// metrics fed from PoolStats.
#include "proxy/telemetry/pool_report.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "pool/pool_shared.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

using namespace std::chrono_literals;

pool::PoolStats stats(std::string route, std::string side, std::string database,
                      std::string user = "app") {
  pool::PoolStats s;
  s.route = std::move(route);
  s.side = std::move(side);
  s.database = std::move(database);
  s.user = std::move(user);
  s.mode = "transaction";
  s.size = 10;
  return s;
}

std::vector<std::string> names(const std::vector<pool::PoolStats>& pools) {
  std::vector<std::string> out;
  for (const auto& s : pools) out.push_back(s.route + "/" + s.side + "/" + s.database);
  return out;
}

// The JSON log lines of `text` whose msg is "pool stats".
std::vector<boost::json::object> pool_lines(const std::string& text) {
  std::vector<boost::json::object> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    if (!ec && v.is_object() && v.at("msg") == "pool stats") out.push_back(v.get_object());
  }
  return out;
}

TEST(PoolActivity, LogsPoolsWhoseCountersMovedOrThatAreBusy) {
  PoolActivity activity;
  auto quiet = stats("r", "source", "quiet");  // opened nothing, holds nothing
  auto used = stats("r", "source", "used");
  used.acquires = 4;
  used.connects = 1;
  used.idle = 1;
  auto busy = stats("r", "target", "busy");
  busy.active = 2;
  // First pass: compared with zero.
  EXPECT_EQ(names(activity.since_last({quiet, used, busy})),
            (std::vector<std::string>{"r/source/used", "r/target/busy"}));
  // Nothing moved: only the pool with connections in use is logged again.
  EXPECT_EQ(names(activity.since_last({quiet, used, busy})),
            (std::vector<std::string>{"r/target/busy"}));
  // A counter moves, a pool is busy, another is no longer busy.
  used.closed = 1;
  quiet.waiting = 1;
  busy.active = 0;
  EXPECT_EQ(names(activity.since_last({quiet, used, busy})),
            (std::vector<std::string>{"r/source/quiet", "r/source/used"}));
  quiet.waiting = 0;
  EXPECT_TRUE(activity.since_last({quiet, used, busy}).empty());
  // A gauge alone (idle connections kept open) is not activity.
  used.idle = 3;
  EXPECT_TRUE(activity.since_last({quiet, used, busy}).empty());
  // Time spent waiting is a counter too.
  used.total_wait_time = 1500us;
  EXPECT_EQ(activity.since_last({quiet, used, busy}).size(), 1u);
}

TEST(PoolActivity, PoolsWithTheSameNameAreTrackedApart) {
  // Two keys that differ only in startup parameters have the same PoolStats identity.
  PoolActivity activity;
  auto a = stats("r", "source", "db");
  auto b = stats("r", "source", "db");
  a.acquires = 5;
  b.acquires = 1;
  EXPECT_EQ(activity.since_last({a, b}).size(), 2u);
  EXPECT_TRUE(activity.since_last({a, b}).empty());
  b.acquires = 2;
  const auto moved = activity.since_last({a, b});
  ASSERT_EQ(moved.size(), 1u);
  EXPECT_EQ(moved[0].acquires, 2);
}

TEST(PoolLog, OneLinePerPoolWithTheStats) {
  auto s = stats("auth", "target", "auth_db", "ro");
  s.active = 3;
  ::testing::internal::CaptureStderr();
  log_pool_stats(std::vector<pool::PoolStats>{s, stats("auth", "source", "auth_db")}, "shutdown");
  const auto lines = pool_lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("level"), "info");
  EXPECT_EQ(lines[0].at("reason"), "shutdown");
  EXPECT_EQ(lines[0].at("route"), "auth");
  EXPECT_EQ(lines[0].at("side"), "target");
  EXPECT_EQ(std::string(lines[0].at("stats").as_string()), pool::to_log_line(s));
  EXPECT_EQ(std::string(lines[1].at("stats").as_string()).rfind("pool=auth/source/auth_db/app", 0),
            0u);
}

TEST(PoolLog, TimerLogsActivePoolsUntilStopped) {
  auto registry = std::make_shared<pool::PoolRegistry>();
  config::Pool settings;
  registry->get({.route = "quiet", .database = "db", .user = "u"}, settings);
  auto used = registry->get({.route = "used", .database = "db", .user = "u"}, settings);
  pool::PoolStats counters;
  counters.acquires = 9;
  used->detach(nullptr, counters);  // a thread's pool that went away after 9 acquires

  boost::asio::io_context ioc;
  auto logger = std::make_shared<PoolLogger>(registry, ioc.get_executor(), 1ms);
  ::testing::internal::CaptureStderr();
  logger->start();
  ASSERT_EQ(ioc.run_one_for(10s), 1u);  // the first tick
  logger->log_all("shutdown");
  logger->stop();
  ioc.run();  // returns: stop() cancelled the next tick and nothing re-arms it
  const auto lines = pool_lines(::testing::internal::GetCapturedStderr());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].at("reason"), "interval");
  EXPECT_EQ(lines[0].at("route"), "used");
  EXPECT_NE(std::string(lines[0].at("stats").as_string()).find(" acquires=9 "), std::string::npos);
  EXPECT_EQ(lines[1].at("reason"), "shutdown");
  EXPECT_EQ(lines[1].at("route"), "quiet");
  EXPECT_EQ(lines[2].at("route"), "used");
}

TEST(PoolMetrics, GaugesAreSumsAndCountersFollowTheRegistry) {
  static int runs = 0;  // a fresh route per --gtest_repeat run: counters never go down
  const std::string route = "pool-report-metrics-" + std::to_string(runs++);
  auto& m = metrics();
  auto a = stats(route, "source", "a");
  a.idle = 2;
  a.active = 3;
  a.connects = 10;
  a.connect_failures = 1;
  auto b = stats(route, "source", "b");
  b.idle = 1;
  b.active = 4;
  b.connects = 5;
  std::vector<pool::PoolStats> pools{a, b};
  auto& ok = m.server_connects(route, Side::source, true);
  auto& failed = m.server_connects(route, Side::source, false);
  m.server_connections(route, Side::target, ServerState::active).Set(42);  // stale
  feed_pool_metrics(pools);
  EXPECT_EQ(m.server_connections(route, Side::source, ServerState::idle).Value(), 3);
  EXPECT_EQ(m.server_connections(route, Side::source, ServerState::active).Value(), 7);
  EXPECT_EQ(m.server_connections(route, Side::target, ServerState::idle).Value(), 0);
  EXPECT_EQ(m.server_connections(route, Side::target, ServerState::active).Value(), 0);
  EXPECT_EQ(ok.Value(), 15);
  EXPECT_EQ(failed.Value(), 1);
  // Feeding the same numbers again changes nothing; new connects add their delta.
  feed_pool_metrics(pools);
  EXPECT_EQ(ok.Value(), 15);
  pools[1].connects = 8;
  pools[1].active = 0;
  feed_pool_metrics(pools);
  EXPECT_EQ(ok.Value(), 18);
  // Lower numbers (another registry) never make a counter go down.
  pools[0].connects = 0;
  feed_pool_metrics(pools);
  EXPECT_EQ(ok.Value(), 18);
  EXPECT_EQ(m.server_connections(route, Side::source, ServerState::active).Value(), 3);
  EXPECT_EQ(m.server_connects(route, Side::target, true).Value(), 0);
}

}  // namespace
}  // namespace pgshift::proxy
