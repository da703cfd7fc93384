// The admin endpoint table (proxy/api/endpoints.hpp): one row per (method, path), paths
// built and matched from it, every row documented.
#include "proxy/api/endpoints.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <sstream>

namespace pgshift::proxy::api {
namespace {

using boost::beast::http::verb;
using Kind = Match::Kind;

TEST(ApiEndpoints, OneRowPerEndpointInOrderAndUnique) {
  std::set<std::pair<verb, std::string_view>> seen;
  std::size_t i = 0;
  for (const EndpointSpec& s : endpoints()) {
    EXPECT_EQ(static_cast<std::size_t>(s.endpoint), i++) << s.pattern;
    EXPECT_TRUE(seen.emplace(s.method, s.pattern).second) << s.pattern;
    EXPECT_EQ(&spec(s.endpoint), &s);
    EXPECT_TRUE(s.pattern.starts_with("/")) << s.pattern;
  }
  EXPECT_EQ(i, static_cast<std::size_t>(Endpoint::list_members) + 1);
}

TEST(ApiEndpoints, ScopesOnlyHealthzIsOpenAndWritesAreOperate) {
  for (const EndpointSpec& s : endpoints()) {
    EXPECT_EQ(s.scope == Scope::open, s.endpoint == Endpoint::healthz) << s.pattern;
    EXPECT_EQ(s.scope == Scope::operate, s.method != verb::get) << s.pattern;
  }
  EXPECT_EQ(to_string(Scope::operate), "operate");
}

// docs/admin-api.md has a heading or a mention "METHOD /path" for every row.
TEST(ApiEndpoints, EveryRowIsDocumented) {
  std::ifstream in(std::string(PGSHIFT_SOURCE_DIR) + "/docs/admin-api.md");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  for (const EndpointSpec& s : endpoints()) {
    const std::string entry =
        std::string(boost::beast::http::to_string(s.method)) + " " + std::string(s.pattern);
    EXPECT_NE(doc.find(entry), std::string::npos) << entry << " is not in docs/admin-api.md";
  }
}

TEST(ApiEndpoints, PathsEncodeTheName) {
  EXPECT_EQ(path(Endpoint::list_routes), "/v1/routes");
  EXPECT_EQ(path(Endpoint::get_route, "auth"), "/v1/routes/auth");
  EXPECT_EQ(path(Endpoint::put_read_percent, "a b/c"), "/v1/routes/a%20b%2Fc/read-percent");
  EXPECT_EQ(path(Endpoint::get_operation, "x.y-z_~"), "/v1/routes/x.y-z_~/operation");
}

TEST(ApiEndpoints, DecodePathSegment) {
  std::string out;
  EXPECT_TRUE(decode_path_segment("a%20b%2Fc", out));
  EXPECT_EQ(out, "a b/c");
  EXPECT_FALSE(decode_path_segment("a%2", out));
  EXPECT_FALSE(decode_path_segment("a%zz", out));
}

TEST(ApiEndpoints, MatchRoundTripsEveryRow) {
  for (const EndpointSpec& s : endpoints()) {
    const Match m = match(s.method, path(s.endpoint, "my route/1"));
    ASSERT_EQ(m.kind, Kind::found) << s.pattern;
    EXPECT_EQ(m.spec, &s);
    EXPECT_EQ(m.pattern, s.pattern);
    if (s.pattern.find("{name}") != std::string_view::npos) {
      EXPECT_EQ(m.name, "my route/1");
    }
  }
}

TEST(ApiEndpoints, MatchIgnoresQueryAndTrailingSlash) {
  const Match m = match(verb::get, "/v1/routes/auth/?verbose=1");
  ASSERT_EQ(m.kind, Kind::found);
  EXPECT_EQ(m.spec->endpoint, Endpoint::get_route);
  EXPECT_EQ(m.name, "auth");
  EXPECT_EQ(match(verb::get, "/v1/routes/").spec->endpoint, Endpoint::list_routes);
}

TEST(ApiEndpoints, MatchWrongMethodListsTheAllowedOnes) {
  const Match m = match(verb::put, "/v1/pause");
  EXPECT_EQ(m.kind, Kind::method_not_allowed);
  EXPECT_EQ(m.allowed, (std::vector<verb>{verb::get, verb::post}));
  EXPECT_EQ(m.pattern, "/v1/pause");
  EXPECT_EQ(match(verb::get, "/v1/routes/a/cutover").kind, Kind::method_not_allowed);
  const Match h = match(verb::post, "/healthz");
  EXPECT_EQ(h.kind, Kind::method_not_allowed);
  EXPECT_TRUE(h.open);
}

TEST(ApiEndpoints, MatchBadNamesAndUnknownPaths) {
  EXPECT_EQ(match(verb::get, "/v1/routes/%zz").kind, Kind::bad_name);
  EXPECT_EQ(match(verb::post, "/v1/routes//cutover").kind, Kind::bad_name);
  EXPECT_TRUE(match(verb::get, "/v1/routes/%zz").pattern.empty());  // label "other"
  for (const char* p :
       {"/", "/v1", "/v1/routes/a/b", "/v1/routes/a/cutover/x", "/healthzz", "/v1/pools/x", ""}) {
    const Match m = match(verb::get, p);
    EXPECT_EQ(m.kind, Kind::not_found) << p;
    EXPECT_TRUE(m.pattern.empty()) << p;
    EXPECT_FALSE(m.open) << p;
  }
}

}  // namespace
}  // namespace pgshift::proxy::api
