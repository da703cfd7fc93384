// The read split end to end (issue 4), part 2: operating it. The read percent changed
// through the admin API while pgbench reads through pgshift, a target outage (split reads
// fall back to the source while the health checker sees it down, and come back), and the
// admin API's answers to bad requests. Fixture: split_routing_support.hpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>

#include "tests/integration/split_routing_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class SplitOpsTest : public ::testing::Test {
 protected:
  void SetUp() override { split_servers().reset(); }
};

std::string describe(const SideCounts& c) {
  return "source " + std::to_string(c.source) + ", target " + std::to_string(c.target);
}

// Polls the per-side read counters until `done` holds for them (or pgbench has exited);
// returns the counts that were last read.
SideCounts wait_for_counts(Process& pgbench, const std::function<bool(const SideCounts&)>& done,
                           const std::string& what) {
  SideCounts last;
  wait_until(
      [&] {
        last = counted_reads();
        return done(last) || !pgbench.running();
      },
      20s, what);
  return last;
}

// The read counters of both sides and pgshift_split_fallbacks_total at one quiet moment: a
// pause holds new transactions before they are routed, and the snapshot is taken once every
// pgbench client waits there, so no read is between its routing (where a fallback is
// counted) and its nextval on a side. The pause is then lifted; the clients go on.
struct ReadSnapshot {
  SideCounts reads;
  double fallbacks = 0;
};
ReadSnapshot quiet_snapshot(const PgshiftProcess& proxy, Process& pgbench, int clients) {
  ReadSnapshot snap;
  const auto pause = admin_request(proxy, "POST", "/v1/pause", R"({"timeout_ms": 20000})");
  EXPECT_EQ(pause.status, 200) << pause.describe();
  EXPECT_TRUE(wait_until(
      [&] {
        return metric_sum(fetch_metrics(proxy), "pgshift_pause_waiting") == clients ||
               !pgbench.running();
      },
      20s, "every pgbench client held by the pause"));
  snap.reads = counted_reads();
  snap.fallbacks =
      metric_sum(fetch_metrics(proxy), "pgshift_split_fallbacks_total", {R"(route="main")"});
  const auto resume = admin_request(proxy, "POST", "/v1/resume");
  EXPECT_EQ(resume.status, 200) << resume.describe();
  return snap;
}

// (c) pgbench reads through pgshift (8 clients, one random user id per transaction) while
// the read percent goes 0 -> 50 -> 100 -> 0: each change takes effect on the running
// sessions, and no transaction fails.
TEST_F(SplitOpsTest, ReadPercentChangesUnderPgbenchTakeEffectWithoutErrors) {
  constexpr int kClients = 8;
  PgshiftProcess proxy(split_proxy_options());
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  TempDir dir("pgshift-split-pgbench");
  // pgbench substitutes :uid inside the comment with the simple protocol only; with
  // -M extended or prepared it becomes a $1 that no one fills in (the key would be "$1").
  write_file(dir / "reads.sql",
             "\\set uid random(1, 100000)\n"
             "SELECT side, n FROM counted_marker /* user_id=':uid' */;\n");
  Process pgbench(ProcessOptions{
      .argv = {pg_tool("pgbench").string(), "-n", "-M", "simple", "-c", std::to_string(kClients),
               "-j", "2", "-T", "12", "-f", (dir / "reads.sql").string(), client_conninfo(proxy)},
      .unset_env = libpq_environment_variables(),
      .merge_output = true});
  const auto pgbench_failed = [&] { return "pgbench:\n" + pgbench.stdout_text(); };

  // 0 %: everything on the source.
  SideCounts c = wait_for_counts(
      pgbench, [](const SideCounts& n) { return n.source >= 300; }, "pgbench reads at 0 %");
  ASSERT_TRUE(pgbench.running()) << pgbench_failed();
  EXPECT_EQ(c.target, 0) << "reads on the target at 0 %: " << describe(c);

  // 50 %: both sides answer.
  ASSERT_TRUE(set_read_percent(proxy, "50"));
  const SideCounts at50 = counted_reads();
  c = wait_for_counts(
      pgbench,
      [&](const SideCounts& n) {
        return n.target >= at50.target + 300 && n.source >= at50.source + 300;
      },
      "reads on both sides at 50 %");
  ASSERT_TRUE(pgbench.running()) << pgbench_failed();
  EXPECT_GT(c.target - at50.target, 0) << describe(c);

  // 100 %: once every session has moved on, the source answers no read but the fallbacks
  // (the target seen unhealthy by a health check, or a connect to it that failed, under
  // load): every source read is one that pgshift_split_fallbacks_total counted.
  ASSERT_TRUE(set_read_percent(proxy, "100"));
  const SideCounts at100 = counted_reads();
  wait_for_counts(
      pgbench, [&](const SideCounts& n) { return n.target >= at100.target + 300; },
      "reads on the target at 100 %");
  const ReadSnapshot settled100 = quiet_snapshot(proxy, pgbench, kClients);
  c = wait_for_counts(
      pgbench, [&](const SideCounts& n) { return n.target >= settled100.reads.target + 1000; },
      "more reads on the target at 100 %");
  const ReadSnapshot end100 = quiet_snapshot(proxy, pgbench, kClients);
  ASSERT_TRUE(pgbench.running()) << pgbench_failed();
  EXPECT_GE(end100.reads.target, settled100.reads.target + 1000) << describe(end100.reads);
  EXPECT_EQ(end100.reads.source - settled100.reads.source,
            static_cast<std::int64_t>(end100.fallbacks - settled100.fallbacks))
      << "reads on the source at 100 % that are not fallbacks: " << describe(settled100.reads)
      << " -> " << describe(end100.reads) << "; fallbacks " << settled100.fallbacks << " -> "
      << end100.fallbacks << "\n"
      << metric_lines(fetch_metrics(proxy), "pgshift_split_fallbacks_total");

  // Back to 0 %: the target answers no more reads.
  ASSERT_TRUE(set_read_percent(proxy, "0"));
  const SideCounts at0 = counted_reads();
  const SideCounts settled0 = wait_for_counts(
      pgbench, [&](const SideCounts& n) { return n.source >= at0.source + 300; },
      "reads on the source at 0 % again");
  c = wait_for_counts(
      pgbench, [&](const SideCounts& n) { return n.source >= settled0.source + 1000; },
      "more reads on the source at 0 % again");
  EXPECT_TRUE(pgbench.running()) << "pgbench ended before the last change was seen; "
                                 << pgbench_failed();
  EXPECT_EQ(c.target, settled0.target)
      << "reads on the target at 0 %: " << describe(settled0) << " -> " << describe(c);

  const auto status = pgbench.wait_for(60s);
  ASSERT_TRUE(status.has_value()) << "pgbench did not finish";
  EXPECT_TRUE(status->success()) << status->to_string() << "\n"
                                 << pgbench_failed() << "\npgshift log:\n"
                                 << proxy.log();
  EXPECT_THAT(pgbench.stdout_text(), HasSubstr("number of failed transactions: 0 ("));
}

// (e) The target stops: once the health checker has noticed, split reads are answered by
// the source without a client error, and counted as fallbacks; when it is back, reads
// return to it, on new connections and on one that was open all along.
TEST_F(SplitOpsTest, TargetOutageFallsBackToTheSourceAndRecovers) {
  PgshiftProcess proxy(split_proxy_options());
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "100"));
  PgConnection held(client_conninfo(proxy));
  ASSERT_EQ(side_of(held, "o-0"), "target");
  const std::string before = fetch_metrics(proxy);

  int errors = 0;
  std::string first_error;
  const auto read = [&](PgConnection& conn, const std::string& key) -> std::string {
    try {
      return side_of(conn, key);
    } catch (const std::exception& e) {
      if (errors++ == 0) first_error = e.what();
      return "<error>";
    }
  };
  const auto read_fresh = [&](const std::string& key) -> std::string {
    try {
      PgConnection fresh(client_conninfo(proxy));
      return read(fresh, key);
    } catch (const std::exception& e) {
      if (errors++ == 0) first_error = e.what();
      return "<connect error>";
    }
  };

  PgCluster& target = split_servers().target;
  const std::uint16_t port = target.port();
  target.stop();
  // The checker probes every 2 s (docs/admin-api.md, health checks).
  ASSERT_TRUE(wait_until([&] { return target_health(proxy) == "unhealthy"; }, 10s,
                         "the health checker to report the target unhealthy"))
      << proxy.log();
  std::map<std::string, int> held_answers;
  std::map<std::string, int> fresh_answers;
  for (int i = 1; i <= 20; ++i) ++held_answers[read(held, "o-" + std::to_string(i))];
  for (int i = 21; i <= 25; ++i) ++fresh_answers[read_fresh("o-" + std::to_string(i))];
  EXPECT_EQ(held_answers["source"], 20) << "on the connection that read from the target";
  EXPECT_EQ(fresh_answers["source"], 5) << "on new connections";
  EXPECT_EQ(errors, 0) << "first error: " << first_error << "\npgshift log:\n" << proxy.log();

  const std::string during = fetch_metrics(proxy);
  const std::vector<std::string> route = {R"(route="main")"};
  EXPECT_GE(metric_sum(during, "pgshift_split_fallbacks_total", route) -
                metric_sum(before, "pgshift_split_fallbacks_total", route),
            25)
      << during;
  const std::vector<std::string> fallback = {R"(route="main")", R"(decision="fallback")"};
  EXPECT_GE(metric_sum(during, "pgshift_split_decisions_total", fallback) -
                metric_sum(before, "pgshift_split_decisions_total", fallback),
            25)
      << during;
  EXPECT_EQ(metric_sum(during, "pgshift_upstream_healthy", {R"(route="main")", R"(side="target")"}),
            0)
      << during;

  target.start();
  ASSERT_EQ(target.port(), port) << "the target came back on another port";
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  EXPECT_EQ(read_fresh("o-30"), "target");
  EXPECT_EQ(read(held, "o-31"), "target") << "the connection open through the outage";
  EXPECT_EQ(read(held, "o-32"), "target");
  EXPECT_EQ(errors, 0) << "first error: " << first_error << "\npgshift log:\n" << proxy.log();
}

// (f) The admin API refuses bad requests with a JSON error and changes nothing.
TEST_F(SplitOpsTest, AdminApiRejectsBadRequestsAndChangesNothing) {
  PgshiftProcess proxy(split_proxy_options());
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "25"));
  const boost::json::value before = route_view(proxy);
  ASSERT_TRUE(before.is_object()) << proxy.log();
  const std::string path = "/v1/routes/main/read-percent";

  struct Case {
    std::string what;
    HttpResponse response;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no token", admin_request_with_auth(proxy, "", "PUT", path, R"({"percent": 50})"), 401,
       "missing bearer token"},
      {"wrong token",
       admin_request_with_auth(proxy, "Bearer not-the-token", "PUT", path, R"({"percent": 50})"),
       401, "invalid bearer token"},
      {"bad JSON", admin_request(proxy, "PUT", path, "{percent: 50}"), 400, "not valid JSON"},
      {"empty body", admin_request(proxy, "PUT", path, ""), 400, "request body is empty"},
      {"string", admin_request(proxy, "PUT", path, R"({"percent": "50"})"), 400,
       R"("percent" must be a number)"},
      {"150", admin_request(proxy, "PUT", path, R"({"percent": 150})"), 400,
       R"("percent" must be between 0 and 100)"},
      {"-1", admin_request(proxy, "PUT", path, R"({"percent": -1})"), 400,
       R"("percent" must be between 0 and 100)"},
      {"three decimals", admin_request(proxy, "PUT", path, R"({"percent": 12.345})"), 400,
       "at most two decimals"},
      {"unknown route",
       admin_request(proxy, "PUT", "/v1/routes/nope/read-percent", R"({"percent": 50})"), 404,
       R"(unknown route "nope")"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    EXPECT_EQ(c.response.status, c.status) << c.response.describe();
    boost::system::error_code ec;
    const boost::json::value body = boost::json::parse(c.response.body, ec);
    ASSERT_FALSE(ec) << "not JSON: " << c.response.body;
    const auto* error = body.is_object() ? body.as_object().if_contains("error") : nullptr;
    ASSERT_TRUE(error != nullptr && error->is_string()) << c.response.body;
    EXPECT_THAT(std::string(error->as_string()), HasSubstr(c.message));
  }

  const boost::json::value after = route_view(proxy);
  ASSERT_TRUE(after.is_object());
  EXPECT_EQ(after.at("read_percent_bp"), before.at("read_percent_bp")) << after;
  EXPECT_EQ(after.at("epoch"), before.at("epoch")) << after;
  PgConnection conn(client_conninfo(proxy));
  EXPECT_EQ(side_of(conn, key_in_buckets("f-", 0, 2500)), "target");
  EXPECT_EQ(side_of(conn, key_in_buckets("f-", 2500, 10000)), "source");
}

}  // namespace
}  // namespace pgshift::test
