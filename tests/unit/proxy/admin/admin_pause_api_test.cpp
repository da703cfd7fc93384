// POST /v1/pause, POST /v1/resume, GET /v1/pause through HTTP.
#include <gtest/gtest.h>

#include "proxy/control/pause_gate.hpp"
#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

namespace http = boost::beast::http;
using test::AdminFixture;

TEST(AdminPauseApi, PauseStatusResume) {
  AdminFixture f;
  auto status = f.get("/v1/pause");
  ASSERT_EQ(status.status, 200u);
  EXPECT_FALSE(status.json().at("paused").as_bool());

  auto paused = f.request(http::verb::post, "/v1/pause", R"({"timeout_ms": 5000})");
  ASSERT_EQ(paused.status, 200u) << paused.body;
  EXPECT_TRUE(paused.json().at("paused").as_bool());
  EXPECT_EQ(paused.json().at("remaining_ms").as_int64(), 5000);
  EXPECT_TRUE(f.runtime().pause->maybe_paused());

  status = f.get("/v1/pause");
  EXPECT_TRUE(status.json().at("paused").as_bool());
  EXPECT_LE(status.json().at("remaining_ms").as_int64(), 5000);

  auto resumed = f.request(http::verb::post, "/v1/resume");
  ASSERT_EQ(resumed.status, 200u);
  EXPECT_TRUE(resumed.json().at("was_paused").as_bool());
  EXPECT_FALSE(resumed.json().at("paused").as_bool());
  EXPECT_FALSE(f.runtime().pause->maybe_paused());

  auto again = f.request(http::verb::post, "/v1/resume");
  EXPECT_FALSE(again.json().at("was_paused").as_bool());
}

TEST(AdminPauseApi, DefaultTimeout) {
  AdminFixture f;
  auto r = f.request(http::verb::post, "/v1/pause");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("remaining_ms").as_int64(), PauseGate::kDefaultTimeout.count());
  f.request(http::verb::post, "/v1/resume");
}

TEST(AdminPauseApi, RejectsBadTimeouts) {
  AdminFixture f;
  for (const char* body :
       {R"({"timeout_ms": 0})", R"({"timeout_ms": 300001})", R"({"timeout_ms": -5})",
        R"({"timeout_ms": 1.5})", R"({"timeout_ms": "100"})",
        R"({"timeout_ms": 99999999999999999999})", R"({"timeout": 100})", "[1]", "{"}) {
    auto r = f.request(http::verb::post, "/v1/pause", body);
    EXPECT_EQ(r.status, 400u) << body;
    EXPECT_FALSE(std::string(r.json().at("error").as_string()).empty());
  }
  EXPECT_FALSE(f.runtime().pause->maybe_paused());
  EXPECT_EQ(f.request(http::verb::post, "/v1/pause", R"({"timeout_ms": 300000})").status, 200u);
  f.request(http::verb::post, "/v1/resume");
}

}  // namespace
}  // namespace pgshift::proxy
