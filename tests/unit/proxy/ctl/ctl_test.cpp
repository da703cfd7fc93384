// `pgshift ctl` against a live admin server.
#include "proxy/ctl/ctl.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "pool/pool_shared.hpp"
#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

using test::AdminFixture;

struct CtlRun {
  int code = -1;
  std::string out, err;
};

CtlRun ctl(std::vector<std::string> args) {
  args.insert(args.begin(), "ctl");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  CtlRun r;
  r.code = ctl_main(static_cast<int>(argv.size()), argv.data(), out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

class CtlTest : public ::testing::Test {
 protected:
  CtlRun run(std::vector<std::string> args) {
    args.insert(args.begin(), {"--url", f.url(), "--token-file", f.token_file()});
    return ctl(std::move(args));
  }
  AdminFixture f;
};

TEST_F(CtlTest, RoutesTable) {
  auto r = run({"routes"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("NAME    PHASE        READ%  EPOCH  TARGET-HEALTH\n", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("auth    source_only  0.00   0      unknown"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("scores  source_only  0.00   0      none"), std::string::npos) << r.out;
}

TEST_F(CtlTest, SetReadPercentThenRoutes) {
  auto r = run({"set-read-percent", "auth", "12.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "auth: read percent set to 12.50 % (epoch 1)\n");
  EXPECT_EQ(f.runtime().states->snapshot()->find("auth")->read_percent.basis_points(), 1250u);
  r = run({"set-read-percent", "auth", "12.50"});
  EXPECT_EQ(r.out, "auth: read percent already 12.50 % (epoch 1, unchanged)\n");
  r = run({"routes"});
  EXPECT_NE(r.out.find("auth    source_only  12.50  1"), std::string::npos) << r.out;
}

TEST_F(CtlTest, ApiErrorsExitOneWithTheMessage) {
  auto r = run({"set-read-percent", "auth", "150"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("between 0 and 100"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("(HTTP 400)"), std::string::npos) << r.err;
  r = run({"set-read-percent", "auth", "12.345"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("at most two decimals"), std::string::npos) << r.err;
  r = run({"route", "nope"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "error: unknown route \"nope\" (HTTP 404)\n");
}

TEST_F(CtlTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({}).code, 2);
  EXPECT_EQ(run({"frobnicate"}).code, 2);
  EXPECT_EQ(run({"route"}).code, 2);
  EXPECT_EQ(run({"set-read-percent", "auth"}).code, 2);
  auto r = run({"set-read-percent", "auth", "abc"});
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("PERCENT must be a number"), std::string::npos);
  EXPECT_EQ(run({"pause", "--timeout-ms", "soon"}).code, 2);
  EXPECT_EQ(ctl({"--url", "https://x", "routes"}).code, 2);
  EXPECT_EQ(ctl({"--bogus"}).code, 2);
  auto help = ctl({"--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("usage: pgshift ctl"), std::string::npos);
}

TEST_F(CtlTest, JsonOutput) {
  auto r = run({"--json", "routes"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto v = boost::json::parse(r.out);
  EXPECT_EQ(v.at("routes").as_array().size(), 2u);
  r = run({"route", "auth", "--json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(boost::json::parse(r.out).at("name").as_string(), "auth");
}

TEST_F(CtlTest, RouteDetail) {
  auto r = run({"route", "auth"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("read percent:  0.00 %"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("target:        127.0.0.1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("/auth_db"), std::string::npos) << r.out;
}

TEST_F(CtlTest, PauseAndResume) {
  auto r = run({"pause", "--timeout-ms", "5000"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("paused: new transactions are held for up to 5000 ms"), std::string::npos)
      << r.out;
  EXPECT_TRUE(f.runtime().pause->maybe_paused());
  r = run({"resume"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "resumed: released 0 held transaction(s)\n");
  r = run({"resume"});
  EXPECT_EQ(r.out, "not paused; nothing to resume\n");
  EXPECT_EQ(run({"pause", "--timeout-ms", "0"}).code, 1);
}

TEST_F(CtlTest, HealthNotReadyExitsOne) {
  auto r = run({"health"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("NOT READY"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("health checker not running"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ROUTE"), std::string::npos) << r.out;
}

TEST_F(CtlTest, PoolsEmpty) {
  auto r = run({"pools"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind("no server pools yet", 0), 0u) << r.out;
  r = run({"pools", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(boost::json::parse(r.out), boost::json::parse(R"({"pools":[]})"));
  EXPECT_EQ(run({"pools", "extra"}).code, 2);
}

TEST_F(CtlTest, PoolsTableAndJson) {
  config::Pool settings;
  settings.size = 20;
  settings.mode = config::PoolMode::transaction;
  auto shared = f.runtime().pools->get(
      {.route = "auth", .side = pool::UpstreamSide::source, .database = "auth_db", .user = "app"},
      settings);
  pool::PoolStats counters;
  counters.acquires = 12;
  counters.connects = 3;
  counters.total_wait_time = std::chrono::microseconds(2500);
  shared->detach(nullptr, counters);  // counters left by a thread's pool that went away

  auto r = run({"pools"});
  ASSERT_EQ(r.code, 0) << r.err;
  // Exactly what pool::format_pools_text() draws from the server's own stats.
  EXPECT_EQ(r.out, pool::format_pools_text(f.runtime().pools->stats())) << r.out;
  EXPECT_EQ(r.out.rfind("pool ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("auth/source/auth_db/app | transaction |"), std::string::npos) << r.out;
  EXPECT_TRUE(r.out.ends_with(" 2500\n")) << r.out;  // total_wait_time_us, the last column

  r = run({"--json", "pools"});
  ASSERT_EQ(r.code, 0) << r.err;
  const auto v = boost::json::parse(r.out);
  ASSERT_EQ(v.at("pools").as_array().size(), 1u);
  EXPECT_EQ(v.at("pools").at(0).at("acquires").as_int64(), 12);
  EXPECT_EQ(v.at("pools").at(0).at("size").as_int64(), 20);
}

TEST_F(CtlTest, HelpListsPools) {
  auto help = ctl({"--help"});
  EXPECT_NE(help.out.find("\n  pools "), std::string::npos) << help.out;
}

TEST_F(CtlTest, TokenFromEnvironmentOrMissing) {
  auto r = ctl({"--url", f.url(), "routes"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("missing bearer token"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("PGSHIFT_ADMIN_TOKEN"), std::string::npos) << r.err;
  ::setenv("PGSHIFT_ADMIN_TOKEN", test::kToken, 1);
  r = ctl({"--url=" + f.url(), "routes"});
  ::unsetenv("PGSHIFT_ADMIN_TOKEN");
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST(Ctl, ConnectionRefusedExitsOne) {
  auto r = ctl({"--url", "http://127.0.0.1:1", "routes"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("cannot connect to http://127.0.0.1:1"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pgshift::proxy
