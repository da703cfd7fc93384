// The admin API end to end over loopback HTTP: auth, routes, read percent, metrics, limits.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>

#include "proxy/api/endpoints.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/telemetry/metrics.hpp"
#include "routing/state_json.hpp"
#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using test::AdminFixture;
using test::HttpReply;
using test::kToken;

std::string error_of(const HttpReply& r) {
  return std::string(r.json().at("error").as_string());
}

HttpReply put_percent(AdminFixture& f, const std::string& route, const std::string& body) {
  return f.request(http::verb::put, "/v1/routes/" + route + "/read-percent", body);
}

TEST(AdminServer, BindsAnEphemeralPort) {
  AdminFixture f;
  EXPECT_NE(f.port(), 0);
}

TEST(AdminServer, HealthzNeedsNoToken) {
  AdminFixture f;
  auto r = f.get("/healthz", "");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("status").as_string(), "ok");
  EXPECT_EQ(r.headers["content-type"], "application/json");
}

TEST(AdminServer, EverythingElseNeedsTheToken) {
  AdminFixture f;
  for (const char* path : {"/v1/routes", "/v1/routes/auth", "/metrics", "/readyz", "/v1/pause",
                           "/v1/pools", "/no/such/path"}) {
    auto missing = f.get(path, "");
    EXPECT_EQ(missing.status, 401u) << path;
    EXPECT_EQ(missing.headers["www-authenticate"], R"(Bearer realm="pgshift")") << path;
    EXPECT_NE(error_of(missing).find("missing bearer token"), std::string::npos);

    auto wrong = f.get(path, "s3cret-admin-tokeN");
    EXPECT_EQ(wrong.status, 401u) << path;
    EXPECT_NE(wrong.headers["www-authenticate"].find("invalid_token"), std::string::npos);
    EXPECT_EQ(error_of(wrong), "invalid bearer token");

    EXPECT_EQ(f.get(path, "short").status, 401u) << path;
  }
  auto basic = f.request(http::verb::get, "/v1/routes", {}, "",
                         {{"Authorization", std::string("Basic ") + kToken}});
  EXPECT_EQ(basic.status, 401u);
  auto put = f.request(http::verb::put, "/v1/routes/auth/read-percent", R"({"percent": 50})", "");
  EXPECT_EQ(put.status, 401u);
  EXPECT_EQ(f.runtime().states->snapshot()->find("auth")->epoch, 0u);
}

TEST(AdminServer, ListsRoutesWithoutSecrets) {
  AdminFixture f;
  auto r = f.get("/v1/routes");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_EQ(r.body.find("password"), std::string::npos);
  const auto routes = r.json().at("routes").as_array();
  ASSERT_EQ(routes.size(), 2u);
  const auto& auth = routes[0].as_object();
  EXPECT_EQ(auth.at("name").as_string(), "auth");
  EXPECT_EQ(auth.at("phase").as_string(), "source_only");
  EXPECT_EQ(auth.at("authoritative").as_string(), "source");
  EXPECT_EQ(auth.at("epoch").as_int64(), 0);
  EXPECT_TRUE(auth.at("updated_at").is_null());
  EXPECT_EQ(auth.at("target").at("database").as_string(), "auth_db");
  EXPECT_EQ(auth.at("target").at("health").at("status").as_string(), "unknown");
  EXPECT_NE(r.body.find(R"("read_percent":0.00)"), std::string::npos) << r.body;
  EXPECT_TRUE(routes[1].at("target").is_null());
}

TEST(AdminServer, GetsOneRoute) {
  AdminFixture f;
  auto r = f.get("/v1/routes/scores");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("name").as_string(), "scores");
  auto missing = f.get("/v1/routes/nope");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(error_of(missing), "unknown route \"nope\"");
}

TEST(AdminServer, PutReadPercentChangesPersistsAndShows) {
  AdminFixture f;
  auto r = put_percent(f, "auth", R"({"percent": 12.5})");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(r.body.find(R"("read_percent":12.50)"), std::string::npos) << r.body;
  EXPECT_EQ(r.json().at("read_percent_bp").as_int64(), 1250);
  EXPECT_EQ(r.json().at("epoch").as_int64(), 1);
  EXPECT_TRUE(r.json().at("changed").as_bool());
  EXPECT_TRUE(r.json().at("updated_at").is_string());

  // Visible in the list, in the store, and on disk.
  auto list = f.get("/v1/routes");
  EXPECT_NE(list.body.find(R"("read_percent":12.50)"), std::string::npos) << list.body;
  EXPECT_EQ(f.runtime().states->snapshot()->find("auth")->read_percent.basis_points(), 1250u);
  auto file = routing::parse_state_file(test::read_file(f.state_file()));
  ASSERT_TRUE(file) << file.message;
  EXPECT_EQ(file->routes.at("auth").read_percent.basis_points(), 1250u);

  // Same value again: 200, unchanged.
  auto again = put_percent(f, "auth", R"({"percent": 12.50})");
  ASSERT_EQ(again.status, 200u);
  EXPECT_FALSE(again.json().at("changed").as_bool());
  EXPECT_EQ(again.json().at("epoch").as_int64(), 1);

  EXPECT_EQ(put_percent(f, "auth", R"({"percent": 100})").status, 200u);
  EXPECT_EQ(put_percent(f, "auth", R"({"percent": 0})").status, 200u);
  EXPECT_EQ(put_percent(f, "auth", R"({"percent": 0.01})").status, 200u);
  EXPECT_EQ(f.runtime().states->snapshot()->find("auth")->epoch, 4u);
}

TEST(AdminServer, PutReadPercentValidation) {
  AdminFixture f;
  struct Case {
    const char* body;
    const char* message;
  };
  for (const Case& c : {
           Case{"", "request body is empty"},
           Case{"{percent: 5}", "not valid JSON"},
           Case{R"({"percent": 5)", "not valid JSON"},
           Case{"[5]", "must be a JSON object"},
           Case{"5", "must be a JSON object"},
           Case{"{}", "missing \"percent\""},
           Case{R"({"percent": 5, "route": "x"})", "unknown member \"route\""},
           Case{R"({"percent": "12.5"})", "\"percent\" must be a number"},
           Case{R"({"percent": null})", "\"percent\" must be a number"},
           Case{R"({"percent": true})", "\"percent\" must be a number"},
           Case{R"({"percent": 100.01})", "between 0 and 100"},
           Case{R"({"percent": 150})", "between 0 and 100"},
           Case{R"({"percent": -1})", "between 0 and 100"},
           Case{R"({"percent": 1e300})", "between 0 and 100"},
           Case{R"({"percent": 12.345})", "at most two decimals"},
           Case{R"({"percent": 0.001})", "at most two decimals"},
       }) {
    auto r = put_percent(f, "auth", c.body);
    EXPECT_EQ(r.status, 400u) << c.body;
    EXPECT_EQ(r.headers["content-type"], "application/json") << c.body;
    EXPECT_NE(error_of(r).find(c.message), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(f.runtime().states->snapshot()->find("auth")->epoch, 0u);
}

TEST(AdminServer, PutReadPercentUnknownRouteAndNoTarget) {
  AdminFixture f;
  auto unknown = put_percent(f, "nope", R"({"percent": 5})");
  EXPECT_EQ(unknown.status, 404u);
  EXPECT_EQ(error_of(unknown), "unknown route \"nope\"");
  auto no_target = put_percent(f, "scores", R"({"percent": 5})");
  EXPECT_EQ(no_target.status, 409u);
  EXPECT_NE(error_of(no_target).find("has no target"), std::string::npos);
  EXPECT_EQ(put_percent(f, "scores", R"({"percent": 0})").status, 200u);
}

TEST(AdminServer, UnknownPathAndWrongMethod) {
  AdminFixture f;
  auto missing = f.get("/v2/nothing");
  EXPECT_EQ(missing.status, 404u);
  EXPECT_EQ(error_of(missing), "no such endpoint");
  auto wrong = f.request(http::verb::get, "/v1/routes/auth/read-percent");
  EXPECT_EQ(wrong.status, 405u);
  EXPECT_EQ(wrong.headers["allow"], "PUT");
  EXPECT_NE(error_of(wrong).find("not allowed"), std::string::npos);
  auto del = f.request(http::verb::delete_, "/v1/routes");
  EXPECT_EQ(del.status, 405u);
  EXPECT_EQ(f.request(http::verb::get, "/v1/resume").status, 405u);
  EXPECT_EQ(f.get("/v1/routes/?x=1").status, 200u);  // trailing slash and query tolerated
}

// Every row of the shared endpoint table reaches its handler: never "no such endpoint" nor
// 405 for its own method (a route named "nope", so that nothing is started or changed; the
// handlers answer 404 unknown route, or 503 where this fixture has no operations).
TEST(AdminServer, EveryTableRowIsServed) {
  AdminFixture f;
  for (const api::EndpointSpec& s : api::endpoints()) {
    const std::string body =
        s.endpoint == api::Endpoint::put_read_percent ? R"({"percent": 5})" : "";
    auto r = f.request(s.method, api::path(s.endpoint, "nope"), body);
    EXPECT_NE(r.status, 405u) << s.pattern;
    EXPECT_EQ(r.body.find("no such endpoint"), std::string::npos) << s.pattern;
    EXPECT_NE(r.status, 401u) << s.pattern;
  }
}

TEST(AdminServer, MetricsExposition) {
  AdminFixture f;
  metrics().route("auth");  // what a session does after login
  ASSERT_EQ(put_percent(f, "auth", R"({"percent": 12.5})").status, 200u);
  auto r = f.get("/metrics");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  for (const char* needle :
       {"# TYPE pgshift_queries_total counter", "pgshift_query_duration_seconds_bucket",
        "pgshift_admin_requests_total{code=\"200\",endpoint=\"/v1/routes/{name}/read-percent\"}",
        "pgshift_route_read_ratio{route=\"auth\"} 0.125", "pgshift_route_epoch{route=\"auth\"} 1",
        "pgshift_route_phase{phase=\"source_only\",route=\"auth\"} 1", "pgshift_pause_active 0"}) {
    EXPECT_NE(r.body.find(needle), std::string::npos) << needle;
  }
}

TEST(AdminServer, BodyLimit) {
  AdminFixture f;
  auto r = put_percent(f, "auth", std::string(70 * 1024, ' '));
  EXPECT_EQ(r.status, 413u);
  EXPECT_NE(error_of(r).find("larger than"), std::string::npos);
}

TEST(AdminServer, KeepAliveServesSeveralRequests) {
  AdminFixture f;
  asio::io_context ioc;
  asio::ip::tcp::socket socket(ioc);
  socket.connect({asio::ip::make_address("127.0.0.1"), f.port()});
  boost::beast::flat_buffer buffer;
  for (int i = 0; i < 3; ++i) {
    http::request<http::string_body> req(http::verb::get, "/v1/routes/auth", 11);
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::authorization, std::string("Bearer ") + kToken);
    req.keep_alive(true);
    http::write(socket, req);
    http::response<http::string_body> res;
    http::read(socket, buffer, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_TRUE(res.keep_alive());
  }
}

// Slowloris: more connections than the limit that never finish their headers must not lock
// a liveness probe out; the longest-waiting reader is evicted to make room.
TEST(AdminServer, ConnectionsThatNeverFinishTheirHeadersCannotLockOutProbes) {
  AdminFixture f;
  auto& evicted = metrics().admin_connections_dropped("evicted");
  const double evicted_before = evicted.Value();
  asio::io_context ioc;
  std::vector<asio::ip::tcp::socket> slow;
  for (int i = 0; i < 70; ++i) {
    slow.emplace_back(ioc);
    slow.back().connect({asio::ip::make_address("127.0.0.1"), f.port()});
    asio::write(slow.back(),
                asio::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: x\r\n")));
  }
  auto r = f.get("/healthz", "");
  EXPECT_EQ(r.status, 200u);
  auto ready = f.get("/readyz");
  EXPECT_EQ(ready.status, 503u);  // answered (not ready: no health checker in this fixture)
  EXPECT_GE(evicted.Value() - evicted_before, 1.0);
}

TEST(AdminServer, ReadyzWithoutHealthCheckerIsNotReady) {
  AdminFixture f;
  auto r = f.get("/readyz");
  EXPECT_EQ(r.status, 503u);
  EXPECT_EQ(r.json().at("status").as_string(), "not_ready");
  EXPECT_NE(r.body.find("health checker not running"), std::string::npos);
}

}  // namespace
}  // namespace pgshift::proxy

namespace pgshift::proxy {
namespace {

// Compare-and-set on the file store: a change based on an old epoch is refused with 409 and
// the current epoch; the right epoch applies.
TEST(AdminServer, PutReadPercentWithAnEpochIsACompareAndSet) {
  test::AdminFixture f;
  auto stale =
      f.request(http::verb::put, "/v1/routes/auth/read-percent", R"({"percent": 10, "epoch": 7})");
  ASSERT_EQ(stale.status, 409u) << stale.body;
  EXPECT_EQ(stale.json().at("epoch").as_int64(), 0);
  EXPECT_NE(std::string(stale.json().at("error").as_string()).find("is at epoch 0, not 7"),
            std::string::npos)
      << stale.body;
  auto bad =
      f.request(http::verb::put, "/v1/routes/auth/read-percent", R"({"percent": 10, "epoch": -1})");
  EXPECT_EQ(bad.status, 400u) << bad.body;
  auto ok =
      f.request(http::verb::put, "/v1/routes/auth/read-percent", R"({"percent": 10, "epoch": 0})");
  ASSERT_EQ(ok.status, 200u) << ok.body;
  EXPECT_EQ(ok.json().at("epoch").as_int64(), 1);
  EXPECT_EQ(ok.json().at("members_at_epoch").as_int64(), 1);
  EXPECT_EQ(ok.json().at("live_members").as_int64(), 1);
}

// Without a control database the fleet is this sidecar alone.
TEST(AdminServer, MembersWithoutAControlDatabase) {
  test::AdminFixture f;
  auto r = f.get("/v1/members");
  ASSERT_EQ(r.status, 200u) << r.body;
  const auto v = r.json();
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("control").at("mode").as_string(), "file");
  EXPECT_TRUE(o.at("control").at("connected").as_bool());
  ASSERT_EQ(o.at("members").as_array().size(), 1u);
  EXPECT_EQ(o.at("members").as_array()[0].at("id").as_string(), "local");
  EXPECT_EQ(f.get("/v1/members", "").status, 401u);
}

}  // namespace
}  // namespace pgshift::proxy
