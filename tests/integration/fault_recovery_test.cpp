// Issue 16, faults that must end in a prompt answer or a consistent state: a target that
// stops during a read split (the read goes to the source at once, the session ends when
// its client leaves), a source that stops (COMMIT and new logins get an error within the
// upstream's connect_timeout, not query_wait_timeout), and a route removed and restored by
// reloads (its read percent and epoch resume from the state store). Fixture:
// split_routing_support.hpp (a source and a target cluster started once for the binary).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <future>
#include <vector>

#include "tests/integration/split_routing_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ::testing::AnyOf;
using ::testing::HasSubstr;

class FaultRecoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!split_servers().source.running()) split_servers().source.start();
    split_servers().reset();
  }
  void TearDown() override {
    // An outage test that failed half way must not leave the next test without a server.
    for (PgCluster* c : {&split_servers().source, &split_servers().target}) {
      if (!c->running()) c->start();
    }
  }
};

// query_wait_timeout is far longer than anything the tests below may take: before the
// fixes every wait here lasted that long.
constexpr int kQueryWaitMs = 30'000;
constexpr int kConnectTimeoutMs = 2'000;

// The split fixture's route "main" in `mode`, with kQueryWaitMs and kConnectTimeoutMs.
PgshiftOptions outage_proxy_options(const std::string& mode) {
  ConfigSpec spec;
  RouteSpec route{.name = "main",
                  .client_database = "postgres",
                  .source = upstream_of(split_servers().source, "app", "postgres"),
                  .target = upstream_of(split_servers().target, "app", "postgres"),
                  .pool_mode = mode};
  route.source.connect_timeout_ms = kConnectTimeoutMs;
  route.target->connect_timeout_ms = kConnectTimeoutMs;
  // The first line continues the route's `pool:` mapping (RouteSpec writes it last).
  route.extra_yaml = "  query_wait_timeout_ms: " + std::to_string(kQueryWaitMs) +
                     "\nread_split:\n  read_your_writes_window_ms: 2000\n";
  spec.routes.push_back(route);
  return {.config_yaml = spec.to_yaml(), .users = users_file_text({{"app", "app-pw"}})};
}

// How long `f` took.
Clock::duration timed(const std::function<void()>& f) {
  const auto start = Clock::now();
  f();
  return Clock::now() - start;
}

std::string seconds_text(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

// Sum of `field` over GET /v1/pools; -1 when the API does not answer.
std::int64_t pools_sum(const PgshiftProcess& proxy, const char* field) {
  const HttpResponse r = admin_request(proxy, "GET", "/v1/pools");
  if (r.status != 200) return -1;
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("pools")) return -1;
  std::int64_t sum = 0;
  for (const auto& pool : v.at("pools").as_array()) sum += pool.at(field).to_number<std::int64_t>();
  return sum;
}

// ---- 16.1: the target stops during a read split ----

// Transaction mode, read percent 50, a key that the split sends to the target: the target
// stops (pg_ctl stop -m fast) before the health checker can notice, and the next reads of
// that key are answered by the source at once, counted as connect fallbacks. The session
// ends when its client leaves.
void split_read_falls_back_when_the_target_stops(const std::string& mode) {
  PgshiftProcess proxy(outage_proxy_options(mode));
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "50"));
  const std::string key = key_in_buckets("u", 0, 5000);
  ASSERT_EQ(expected_side(key, 5000), "target");

  auto client = std::make_unique<PgConnection>(client_conninfo(proxy));
  std::string first;
  try {
    first = side_of(*client, key);
  } catch (const std::exception& e) {
    first = e.what();
  }
  ASSERT_EQ(first, "target") << proxy.log();
  const std::string before = fetch_metrics(proxy);

  split_servers().target.stop();
  for (int i = 0; i < 5; ++i) {
    std::string side;
    const auto took = timed([&] {
      try {
        side = side_of(*client, key);
      } catch (const std::exception& e) {
        side = e.what();
      }
    });
    ASSERT_EQ(side, "source") << "read " << i << "\n" << proxy.log();
    // One refused connect, no retries: far below connect_timeout.
    EXPECT_LT(took, std::chrono::milliseconds(kConnectTimeoutMs))
        << "read " << i << " took " << seconds_text(took) << "\n"
        << proxy.log();
  }
  const std::string during = fetch_metrics(proxy);
  EXPECT_GE(metric_sum(during, "pgshift_split_fallbacks_total", {R"(route="main")"}) -
                metric_sum(before, "pgshift_split_fallbacks_total", {R"(route="main")"}),
            5)
      << during;

  // The client leaves: its session ends and nothing is left connecting to the target.
  client.reset();
  EXPECT_TRUE(wait_until(
      [&] {
        const std::string m = fetch_metrics(proxy);
        return metric_sum(m, "pgshift_client_connections", {R"(route="main")"}) == 0 &&
               pools_sum(proxy, "connecting") == 0 && pools_sum(proxy, "waiting") == 0;
      },
      10s, "the session to end and no server connection to be opening"))
      << fetch_metrics(proxy) << admin_request(proxy, "GET", "/v1/pools").describe();

  split_servers().target.start();
}

TEST_F(FaultRecoveryTest, SplitReadFallsBackAtOnceWhenTheTargetStopsTransactionMode) {
  split_read_falls_back_when_the_target_stops("transaction");
}

TEST_F(FaultRecoveryTest, SplitReadFallsBackAtOnceWhenTheTargetStopsSessionMode) {
  split_read_falls_back_when_the_target_stops("session");
}

// ---- 16.2: the source stops ----

// A client in a transaction sees its statement fail (08006) and its COMMIT
// answered with an error at once; a new login gets a FATAL error within connect_timeout.
void source_down_answers_commit_and_logins(const std::string& mode) {
  PgshiftProcess proxy(outage_proxy_options(mode));
  PgConnection client(client_conninfo(proxy));
  client.exec("BEGIN");
  client.exec("INSERT INTO events (k) VALUES ('lost')");

  split_servers().source.stop();
  std::string statement_state;
  try {
    client.exec("INSERT INTO events (k) VALUES ('after')");
  } catch (const PgError& e) {
    statement_state = e.sqlstate();
  }
  EXPECT_THAT(statement_state, AnyOf("08006", "57P01", "")) << "the statement must fail";

  std::string commit_error;
  const auto commit_took = timed([&] {
    try {
      client.exec("COMMIT");
      commit_error = "<committed>";
    } catch (const std::exception& e) {
      commit_error = e.what();
    }
  });
  EXPECT_NE(commit_error, "<committed>");
  EXPECT_LT(commit_took, std::chrono::milliseconds(kConnectTimeoutMs * 3))
      << "COMMIT took " << seconds_text(commit_took) << ": " << commit_error;

  std::string login_error;
  const auto login_took = timed([&] { login_error = connect_error(client_conninfo(proxy)); });
  EXPECT_THAT(login_error, HasSubstr("could not connect to upstream")) << login_error;
  EXPECT_THAT(login_error, HasSubstr("within connect_timeout")) << login_error;
  EXPECT_LT(login_took, std::chrono::milliseconds(kConnectTimeoutMs * 3))
      << "the login took " << seconds_text(login_took) << ": " << login_error;

  // Logins queued behind one that is connecting hear the same error, not the wait timeout.
  std::vector<std::future<std::string>> logins;
  const auto many_took = timed([&] {
    for (int i = 0; i < 4; ++i) {
      logins.push_back(
          std::async(std::launch::async, [&] { return connect_error(client_conninfo(proxy)); }));
    }
    for (auto& l : logins) {
      EXPECT_THAT(l.get(), HasSubstr("could not connect to upstream"));
    }
  });
  EXPECT_LT(many_took, std::chrono::milliseconds(kConnectTimeoutMs * 3)) << seconds_text(many_took);

  split_servers().source.start();
  PgConnection after(client_conninfo(proxy));
  EXPECT_EQ(side_of(after, ""), "source");
  EXPECT_EQ(events_on(split_servers().source), 0) << "the transaction was lost, not committed";
}

TEST_F(FaultRecoveryTest, SourceDownAnswersCommitAndLoginsWithinConnectTimeoutSessionMode) {
  source_down_answers_commit_and_logins("session");
}

// In transaction mode the COMMIT after the lost statement needs a new server: it used to
// wait out query_wait_timeout.
TEST_F(FaultRecoveryTest, SourceDownAnswersCommitAndLoginsWithinConnectTimeoutTransactionMode) {
  source_down_answers_commit_and_logins("transaction");
}

// ---- 16.4: a route removed and restored by reloads ----

std::int64_t view_int(const boost::json::value& v, const char* field) {
  if (!v.is_object() || !v.as_object().contains(field)) return -1;
  return v.at(field).to_number<std::int64_t>();
}

// A config with route "main" (the split fixture's) or, without it, route "other"; `control`
// as ConfigSpec::control.
std::string reload_config(bool with_main, const std::string& control) {
  ConfigSpec spec;
  spec.control = control;
  RouteSpec route{.name = with_main ? "main" : "other",
                  .client_database = with_main ? "postgres" : "otherdb",
                  .source = upstream_of(split_servers().source, "app", "postgres"),
                  .target = upstream_of(split_servers().target, "app", "postgres")};
  spec.routes.push_back(route);
  return spec.to_yaml();
}

// Read percent 25 then 50 (epoch 2); a reload removes the route, another restores it: it
// comes back at 50 % / epoch 2 (the store's), and the next change makes epoch 3. With the
// state file, the file keeps the removed route through a change of another route meanwhile.
void route_removed_and_restored(const std::string& control) {
  PgshiftProcess proxy(
      {.config_yaml = reload_config(true, control), .users = users_file_text({{"app", "app-pw"}})});
  ASSERT_TRUE(set_read_percent(proxy, "25"));
  ASSERT_TRUE(set_read_percent(proxy, "50"));
  ASSERT_TRUE(wait_until([&] { return view_int(route_view(proxy), "epoch") == 2; }, 10s, "epoch 2"))
      << proxy.log();

  proxy.write_config(reload_config(false, control));
  proxy.send_signal(SIGHUP);
  ASSERT_TRUE(
      wait_until([&] { return admin_request(proxy, "GET", "/v1/routes/main").status == 404; }, 10s,
                 "the reload to remove route main"))
      << proxy.log();
  const HttpResponse r =
      admin_request(proxy, "PUT", "/v1/routes/other/read-percent", R"({"percent": 10})");
  EXPECT_EQ(r.status, 200) << r.describe();
  if (control == "file") {
    EXPECT_THAT(read_file(proxy.dir() / "pgshift-state.json"), HasSubstr("\"main\""))
        << "the state file must keep the removed route";
  }

  proxy.write_config(reload_config(true, control));
  proxy.send_signal(SIGHUP);
  boost::json::value view;
  ASSERT_TRUE(wait_until(
      [&] {
        view = route_view(proxy);
        return view.is_object();
      },
      10s, "the reload to restore route main"))
      << proxy.log();
  EXPECT_EQ(view_int(view, "epoch"), 2) << boost::json::serialize(view);
  EXPECT_EQ(view_int(view, "read_percent_bp"), 5000) << boost::json::serialize(view);
  EXPECT_TRUE(proxy.wait_for_log("route state restored")) << proxy.log();
  EXPECT_THAT(proxy.log(), HasSubstr("route state retired"));
  if (control == "file") {
    EXPECT_THAT(proxy.log(), HasSubstr("audit: route state retired"));
  }

  ASSERT_TRUE(set_read_percent(proxy, "60"));
  EXPECT_TRUE(wait_until([&] { return view_int(route_view(proxy), "epoch") == 3; }, 10s,
                         "epoch 3: the epoch never goes backwards"))
      << boost::json::serialize(route_view(proxy));
}

TEST_F(FaultRecoveryTest, RouteRemovedAndRestoredByReloadsResumesItsState) {
  route_removed_and_restored("file");
}

// The same with the control plane in a database (PgStateStore): the route's row stays in
// the control database, and the restored route serves its state at once.
TEST_F(FaultRecoveryTest, RouteRemovedAndRestoredByReloadsResumesItsStateWithControlDatabase) {
  PgCluster& ctl = split_servers().source;
  if (ctl.exec("SELECT count(*) FROM pg_roles WHERE rolname = 'ctl'").scalar() == "0") {
    ctl.create_role("ctl", "ctl-pw");
  }
  ctl.exec("DROP DATABASE IF EXISTS ctl16");
  ctl.exec("CREATE DATABASE ctl16 OWNER ctl");
  route_removed_and_restored("{host: 127.0.0.1, port: " + std::to_string(ctl.port()) +
                             ", database: ctl16, user: ctl, password: ctl-pw, poll_ms: 250}");
}

}  // namespace
}  // namespace pgshift::test
