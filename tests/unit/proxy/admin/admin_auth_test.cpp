// Pure helpers of the admin API: bearer check, JSON writer, dates, URL decoding.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "proxy/admin/auth.hpp"
#include "proxy/admin/http.hpp"

namespace pgshift::proxy {
namespace {

TEST(AdminAuth, BearerToken) {
  const std::string token = "abc123";
  EXPECT_EQ(check_bearer("Bearer abc123", &token), AdminAuth::ok);
  EXPECT_EQ(check_bearer("bearer abc123", &token), AdminAuth::ok);
  EXPECT_EQ(check_bearer("  Bearer   abc123  ", &token), AdminAuth::ok);
  EXPECT_EQ(check_bearer("", &token), AdminAuth::missing);
  EXPECT_EQ(check_bearer("Bearer abc124", &token), AdminAuth::invalid);
  EXPECT_EQ(check_bearer("Bearer abc1234", &token), AdminAuth::invalid);
  EXPECT_EQ(check_bearer("Bearer ", &token), AdminAuth::invalid);
  EXPECT_EQ(check_bearer("Basic abc123", &token), AdminAuth::invalid);
  EXPECT_EQ(check_bearer("Bearerabc123", &token), AdminAuth::invalid);
  EXPECT_EQ(check_bearer("abc123", &token), AdminAuth::invalid);
  const std::string empty;
  EXPECT_EQ(check_bearer("Bearer ", &empty), AdminAuth::not_configured);
  EXPECT_EQ(check_bearer("Bearer abc123", nullptr), AdminAuth::not_configured);
}

TEST(AdminJson, DoublesHaveTwoDecimals) {
  boost::json::object o;
  o["p"] = 12.5;
  o["q"] = 100.0;
  o["n"] = 7;
  o["s"] = "a\"b\n";
  o["a"] = boost::json::array{0.01, nullptr, true};
  const auto text = admin_json_text(o);
  EXPECT_EQ(text, R"({"p":12.50,"q":100.00,"n":7,"s":"a\"b\n","a":[0.01,null,true]})");
  EXPECT_EQ(boost::json::parse(text).at("p").as_double(), 12.5);
}

TEST(AdminJson, Iso8601) {
  EXPECT_EQ(iso8601_utc(1700000000123), boost::json::value("2023-11-14T22:13:20.123Z"));
  EXPECT_TRUE(iso8601_utc(0).is_null());
}

TEST(AdminJson, ErrorResponseShape) {
  auto res = error_response(http::status::bad_request, "nope");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(boost::json::parse(res.body()).at("error").as_string(), "nope");
}

}  // namespace
}  // namespace pgshift::proxy
