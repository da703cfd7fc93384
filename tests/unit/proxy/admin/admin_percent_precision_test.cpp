// PUT /v1/routes/{name}/read-percent reads the number exactly (issue 16.11): more than two
// decimals, values that only a double rounds into range, out-of-range exponents and
// duplicate members are refused with 400, and nothing changes.
#include <gtest/gtest.h>

#include "proxy/admin/percent_body.hpp"
#include "proxy/control/route_state_store.hpp"
#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

namespace http = boost::beast::http;
using test::AdminFixture;
using test::HttpReply;

HttpReply put_percent(AdminFixture& f, const std::string& body) {
  return f.request(http::verb::put, "/v1/routes/auth/read-percent", body);
}

std::string error_of(const HttpReply& r) {
  return std::string(r.json().at("error").as_string());
}

std::uint64_t epoch(AdminFixture& f) {
  return f.runtime().states->snapshot()->find("auth")->epoch;
}

TEST(AdminPercentPrecision, RefusesWhatADoubleWouldRound) {
  AdminFixture f;
  struct Case {
    const char* body;
    const char* message;
  };
  for (const Case& c : {
           Case{R"({"percent": 99.999999999999999999})", "at most two decimals"},
           Case{R"({"percent": 12.3400000000000000001})", "at most two decimals"},
           Case{R"({"percent": 0.001})", "at most two decimals"},
           Case{R"({"percent": 1e-400})", "between 0 and 100 with at most two decimals"},
           Case{R"({"percent": 1e400})", "between 0 and 100"},
           Case{R"({"percent": 5e-3})", "at most two decimals"},
           Case{R"({"percent": 1E100000000000})", "exponent overflow"},
           Case{R"({"percent": 1e-100001})", "between 0 and 100"},
           Case{R"({"percent": 100.000000000000000001})", "at most two decimals"},
           Case{R"({"percent": -0.01})", "between 0 and 100"},
           Case{R"({"percent": 5, "percent": 50})", "duplicate member \"percent\""},
           Case{R"({"percent": 50, "percent": 50})", "duplicate member \"percent\""},
           Case{R"({"percent": 50, "perc\u0065nt": 5})", "duplicate member \"percent\""},
       }) {
    const HttpReply r = put_percent(f, c.body);
    EXPECT_EQ(r.status, 400u) << c.body << " -> " << r.body;
    EXPECT_NE(error_of(r).find(c.message), std::string::npos) << c.body << " -> " << r.body;
  }
  EXPECT_EQ(epoch(f), 0u) << "a refused request changed the route";
}

TEST(AdminPercentPrecision, AcceptsEveryExactSpellingOfTwoDecimals) {
  AdminFixture f;
  struct Case {
    const char* body;
    std::uint32_t bp;
  };
  for (const Case& c : {
           Case{R"({"percent": 12.5})", 1250},
           Case{R"({"percent": 12.50000})", 1250},
           Case{R"({"percent": 1.25e1})", 1250},
           Case{R"({"percent": 1250e-2})", 1250},
           Case{R"({"percent": 1E2})", 10000},
           Case{R"({"percent": 100.00})", 10000},
           Case{R"({"percent": 0.01})", 1},
           Case{R"({"percent": 0e-400})", 0},
           Case{R"({"percent": -0})", 0},
           Case{R"({"percent": 33.33})", 3333},
       }) {
    const HttpReply r = put_percent(f, c.body);
    ASSERT_EQ(r.status, 200u) << c.body << " -> " << r.body;
    EXPECT_EQ(r.json().at("read_percent_bp").as_int64(), c.bp) << c.body;
  }
}

// Found by fuzz_admin_request: text that is not a JSON number (garbage after the exponent
// marker) overflowed the exponent sum (UBSan) instead of being refused.
TEST(AdminPercentPrecision, ExactBasisPointsRefusesWhatIsNotANumber) {
  for (const char* text : {"1e", "1e+", "1e5x", "1e\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
                           "1e99999999999999999999", "2e-a"}) {
    EXPECT_FALSE(exact_basis_points(text).has_value()) << text;
  }
  EXPECT_EQ(exact_basis_points("1.25e1"), 1250u);
}

}  // namespace
}  // namespace pgshift::proxy
