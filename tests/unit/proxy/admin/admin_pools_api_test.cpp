// GET /v1/pools through HTTP, and the pool series of GET /metrics it shares a source with.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>

#include "pool/pool_shared.hpp"
#include "proxy/telemetry/metrics.hpp"
#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

namespace http = boost::beast::http;
using test::AdminFixture;

config::Pool pool_settings(int size, config::PoolMode mode = config::PoolMode::session) {
  config::Pool p;
  p.size = size;
  p.reserve = 2;
  p.mode = mode;
  return p;
}

// A pool key with counters, without a server: what a thread's pool leaves to its key when
// it goes away (PoolShared::detach), which is how counters reach the registry's stats.
std::shared_ptr<pool::PoolShared> add_pool(pool::PoolRegistry& registry, pool::PoolKey key,
                                           const config::Pool& settings, std::int64_t connects = 0,
                                           std::int64_t connect_failures = 0) {
  auto shared = registry.get(key, settings);
  pool::PoolStats counters;
  counters.acquires = connects;
  counters.connects = connects;
  counters.connect_failures = connect_failures;
  shared->detach(nullptr, counters);
  return shared;
}

TEST(AdminPoolsApi, EmptyRegistryIsAnEmptyList) {
  AdminFixture f;
  auto r = f.get("/v1/pools");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.headers["cache-control"], "no-store");
  EXPECT_EQ(r.json(), boost::json::parse(R"({"pools":[]})"));
}

TEST(AdminPoolsApi, NeedsTheTokenAndGet) {
  AdminFixture f;
  auto missing = f.get("/v1/pools", "");
  EXPECT_EQ(missing.status, 401u);
  EXPECT_EQ(missing.headers["www-authenticate"], R"(Bearer realm="pgshift")");
  EXPECT_EQ(f.get("/v1/pools", "wrong-token").status, 401u);
  auto post = f.request(http::verb::post, "/v1/pools");
  EXPECT_EQ(post.status, 405u);
  EXPECT_EQ(post.headers["allow"], "GET");
}

TEST(AdminPoolsApi, ListsEveryPoolInKeyOrder) {
  AdminFixture f;
  auto& registry = *f.runtime().pools;
  add_pool(registry,
           {.route = "scores",
            .side = pool::UpstreamSide::source,
            .database = "scores_db",
            .user = "app"},
           pool_settings(5));
  add_pool(registry,
           {.route = "auth",
            .side = pool::UpstreamSide::target,
            .database = "auth_db",
            .user = "ro\"user"},
           pool_settings(20, config::PoolMode::transaction), 7, 3);
  auto r = f.get("/v1/pools");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto body = r.json();
  const auto& pools = body.at("pools").as_array();
  ASSERT_EQ(pools.size(), 2u) << r.body;
  const auto& auth = pools[0].as_object();
  EXPECT_EQ(auth.at("route").as_string(), "auth");
  EXPECT_EQ(auth.at("side").as_string(), "target");
  EXPECT_EQ(auth.at("database").as_string(), "auth_db");
  EXPECT_EQ(auth.at("user").as_string(), "ro\"user");
  EXPECT_EQ(auth.at("mode").as_string(), "transaction");
  EXPECT_EQ(auth.at("size").as_int64(), 20);
  EXPECT_EQ(auth.at("reserve").as_int64(), 2);
  EXPECT_EQ(auth.at("connects").as_int64(), 7);
  EXPECT_EQ(auth.at("connect_failures").as_int64(), 3);
  EXPECT_EQ(auth.at("total").as_int64(), 0);
  EXPECT_EQ(auth.at("total_wait_time_us").as_int64(), 0);
  EXPECT_EQ(pools[1].at("route").as_string(), "scores");
  EXPECT_EQ(pools[1].at("mode").as_string(), "session");
}

TEST(AdminPoolsApi, CountedInAdminRequests) {
  AdminFixture f;
  auto& counter = metrics().admin_requests("/v1/pools", 200);
  const double before = counter.Value();
  ASSERT_EQ(f.get("/v1/pools").status, 200u);
  ASSERT_EQ(f.get("/v1/pools/").status, 200u);  // trailing slash tolerated, same template
  EXPECT_EQ(counter.Value(), before + 2);
  EXPECT_NE(f.get("/metrics")
                .body.find(R"(pgshift_admin_requests_total{code="200",endpoint="/v1/pools"})"),
            std::string::npos);
}

TEST(AdminPoolsApi, MetricsScrapeFeedsPoolSeries) {
  AdminFixture f;
  // The metrics registry is process-wide and its counters never go down: a fresh route name
  // per run (--gtest_repeat) keeps the expected values exact.
  static int runs = 0;
  const std::string route = "pools-api-metrics-" + std::to_string(runs++);
  auto& registry = *f.runtime().pools;
  add_pool(registry,
           {.route = route, .side = pool::UpstreamSide::source, .database = "a", .user = "u"},
           pool_settings(4), 5, 1);
  auto body = f.get("/metrics").body;
  const std::string labels = "{result=\"ok\",route=\"" + route + "\",side=\"source\"}";
  EXPECT_NE(body.find("pgshift_server_connects_total" + labels + " 5"), std::string::npos) << body;
  EXPECT_NE(body.find("pgshift_server_connects_total{result=\"error\",route=\"" + route +
                      "\",side=\"source\"} 1"),
            std::string::npos);
  EXPECT_NE(body.find("pgshift_server_connections{route=\"" + route +
                      "\",side=\"target\",state=\"idle\"} 0"),
            std::string::npos);
  // A second pool of the same route side adds up; scraping again does not count twice.
  add_pool(registry,
           {.route = route, .side = pool::UpstreamSide::source, .database = "b", .user = "u"},
           pool_settings(4), 2);
  f.get("/metrics");
  body = f.get("/metrics").body;
  EXPECT_NE(body.find("pgshift_server_connects_total" + labels + " 7"), std::string::npos) << body;
}

}  // namespace
}  // namespace pgshift::proxy
