// The cutover surface without databases: POST /v1/routes/{name}/cutover|rollback|finalize and
// GET .../operation against a scripted RouteOperations, `pgshift ctl cutover` following it,
// and SidecarFleet on a real pause gate and state store.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <mutex>
#include <sstream>
#include <thread>

#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/ctl/ctl.hpp"
#include "proxy/runtime/operations.hpp"
#include "tests/unit/proxy/admin/admin_fixture.hpp"

namespace pgshift::proxy {
namespace {

namespace http = boost::beast::http;
namespace json = boost::json;
using test::AdminFixture;

// Records the requests; each status() call reveals one more step until the script ends.
struct ScriptedOperations : RouteOperations {
  mutable std::mutex mu;
  std::vector<OperationRequest> requests;
  unsigned answer = 202;
  std::string final_state = "completed";
  mutable std::size_t reads = 0;

  OperationStarted start(const OperationRequest& r) override {
    std::lock_guard lock(mu);
    requests.push_back(r);
    OperationStarted s;
    s.status = answer;
    if (answer != 202) s.error = "another cutover is running";
    s.operation["state"] = "running";
    return s;
  }
  std::optional<json::object> status(std::string_view route) const override {
    std::lock_guard lock(mu);
    if (requests.empty() || route != requests.back().route) return std::nullopt;
    const char* names[] = {"preconditions", "hold", "fence", "commit"};
    json::array steps;
    for (std::size_t i = 0; i < std::min<std::size_t>(reads, 4); ++i) {
      steps.push_back({{"name", names[i]},
                       {"status", "ok"},
                       {"duration_ms", 3 + i},
                       {"detail", "step " + std::to_string(i)}});
    }
    json::object o;
    o["steps"] = std::move(steps);
    o["state"] = reads >= 4 ? final_state : "running";
    o["summary"] = "cutover of route auth: " + final_state + " in 42 ms";
    ++reads;
    return o;
  }
};

struct CtlRun {
  int code = -1;
  std::string out, err;
};

class CutoverApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ops = std::make_shared<ScriptedOperations>();
    f.runtime().operations = ops;
  }
  CtlRun ctl(std::vector<std::string> args) {
    args.insert(args.begin(), {"ctl", "--url", f.url(), "--token-file", f.token_file()});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::ostringstream out, err;
    CtlRun r;
    r.code = ctl_main(static_cast<int>(argv.size()), argv.data(), out, err);
    r.out = out.str();
    r.err = err.str();
    return r;
  }
  AdminFixture f;
  std::shared_ptr<ScriptedOperations> ops;
};

TEST_F(CutoverApiTest, PostStartsTheOperationWithItsOptions) {
  auto r = f.request(http::verb::post, "/v1/routes/auth/cutover",
                     R"({"dry_run": true, "max_lag_ms": 250, "drain_timeout_ms": 900,
                         "skip_verify": true})");
  ASSERT_EQ(r.status, 202u) << r.body;
  EXPECT_EQ(r.headers["location"], "/v1/routes/auth/operation");
  ASSERT_EQ(ops->requests.size(), 1u);
  const auto& q = ops->requests[0];
  EXPECT_EQ(q.route, "auth");
  EXPECT_EQ(q.kind, "cutover");
  EXPECT_TRUE(q.dry_run);
  EXPECT_TRUE(q.skip_verify);
  EXPECT_EQ(q.max_lag_ms, 250);
  EXPECT_EQ(q.drain_timeout_ms, 900);
  EXPECT_EQ(q.actor.rfind("admin@127.0.0.1:", 0), 0u) << q.actor;
  EXPECT_EQ(f.request(http::verb::post, "/v1/routes/auth/rollback").status, 202u);
  EXPECT_EQ(f.request(http::verb::post, "/v1/routes/auth/finalize").status, 202u);
  EXPECT_EQ(ops->requests[1].kind, "rollback");
  EXPECT_EQ(ops->requests[2].kind, "finalize");
  EXPECT_FALSE(ops->requests[1].dry_run);
}

TEST_F(CutoverApiTest, BadBodiesAndMethodsAreRefusedBeforeAnythingStarts) {
  for (const char* body : {R"({"dry_run": 1})", R"({"max_lag_ms": -5})", R"({"max_lag_ms": 1.5})",
                           R"({"lag": 5})", "[1]", "not json"}) {
    auto r = f.request(http::verb::post, "/v1/routes/auth/cutover", body);
    EXPECT_EQ(r.status, 400u) << body << ": " << r.body;
  }
  EXPECT_EQ(f.get("/v1/routes/auth/cutover").status, 405u);
  EXPECT_EQ(f.request(http::verb::post, "/v1/routes/auth/switch").status, 404u);
  EXPECT_TRUE(ops->requests.empty());
  ops->answer = 409;
  auto busy = f.request(http::verb::post, "/v1/routes/auth/cutover");
  EXPECT_EQ(busy.status, 409u);
  EXPECT_NE(busy.body.find("another cutover is running"), std::string::npos);
}

TEST_F(CutoverApiTest, OperationIs404UntilOneRan) {
  EXPECT_EQ(f.get("/v1/routes/auth/operation").status, 404u);
  f.request(http::verb::post, "/v1/routes/auth/cutover");
  auto r = f.get("/v1/routes/auth/operation");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.json().at("state").as_string(), "running");
}

TEST_F(CutoverApiTest, CtlPrintsEachStepOnceAndTheSummary) {
  auto r = ctl({"cutover", "auth", "--skip-verify", "--max-lag-ms", "300"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(ops->requests.at(0).skip_verify);
  EXPECT_EQ(ops->requests.at(0).max_lag_ms, 300);
  for (const char* step : {"preconditions", "hold", "fence", "commit"}) {
    const auto at = r.out.find(step);
    EXPECT_NE(at, std::string::npos) << step << "\n" << r.out;
    EXPECT_EQ(r.out.find(step, at + 1), std::string::npos) << step << " printed twice\n" << r.out;
  }
  EXPECT_NE(r.out.find("cutover of route auth: completed in 42 ms"), std::string::npos) << r.out;
}

TEST_F(CutoverApiTest, CtlExitsOneWhenTheOperationDidNotComplete) {
  ops->final_state = "aborted";
  EXPECT_EQ(ctl({"rollback", "auth"}).code, 1);
  ops->answer = 409;
  auto busy = ctl({"cutover", "auth"});
  EXPECT_EQ(busy.code, 1);
  EXPECT_NE(busy.err.find("another cutover is running (HTTP 409)"), std::string::npos) << busy.err;
  EXPECT_EQ(ctl({"cutover"}).code, 2);  // usage
}

}  // namespace
}  // namespace pgshift::proxy
