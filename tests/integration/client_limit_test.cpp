// routes[].pool.max_client_connections through the real pgshift binary against PostgreSQL 15,
// in both pool modes and over two I/O threads (the count is per route, over all threads):
// clients past the limit get FATAL 53300 at login and the clients in are unaffected, a client
// that leaves frees its slot, concurrent logins never get more than the limit in, and a
// reload that changes the limit keeps the clients in and their count.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <csignal>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "tests/integration/helpers.hpp"
#include "tests/integration/transaction_pool_helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const auto* const servers_env = SharedEnvironment<TxnServers>::install();
PgCluster& source() {
  return SharedEnvironment<TxnServers>::get().source;
}

// Route "main" (any database but "other") with max_client_connections `limit`, and route
// "other" (database "other") with its own default limit; both to the same upstream database.
std::string config_yaml(const std::string& mode, int limit) {
  ConfigSpec spec;
  RouteSpec main{
      .source = upstream_of(source(), kPoolUser, kDatabase), .pool_mode = mode, .pool_size = 12};
  // Continues the route's pool: block (RouteSpec emits mode and size there).
  main.extra_yaml = "  max_client_connections: " + std::to_string(limit) + "\n";
  RouteSpec other{.name = "other",
                  .client_database = "other",
                  .source = upstream_of(source(), kPoolUser, kDatabase),
                  .pool_mode = mode,
                  .pool_size = 2};
  spec.routes = {other, main};
  // Two I/O threads: clients are spread over them, and the limit holds over both.
  spec.extra_yaml = "threads: 2\n";
  return spec.to_yaml();
}

std::string limit_message(int limit) {
  return "too many client connections for route \"main\" (max_client_connections " +
         std::to_string(limit) + ")";
}

int count_of(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

class ClientLimitTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { wait_no_pool_backends(source()); }

  void start(int limit) {
    proxy_ = std::make_unique<PgshiftProcess>(
        PgshiftOptions{.config_yaml = config_yaml(GetParam(), limit),
                       .users = users_file_text({{kClientUser, kClientPassword}})});
  }

  std::string conninfo(const std::string& db = kDatabase) const {
    return proxy_->conninfo(kClientUser, kClientPassword, db);
  }

  // A client that logs in and runs a query.
  std::unique_ptr<PgConnection> client() {
    auto c = std::make_unique<PgConnection>(conninfo());
    EXPECT_EQ(c->scalar("SELECT 40 + 2"), "42");
    return c;
  }

  // A login that must be refused at the limit: FATAL 53300 with the route and the limit.
  void expect_refused(int limit) {
    const std::string err = connect_error_verbose(conninfo());
    EXPECT_THAT(err, HasSubstr("FATAL:  53300: " + limit_message(limit))) << proxy_->log();
  }

  // Logs in once a slot is free. Right after a client disconnects its session may not have
  // ended yet, so a refusal (53300) is retried until the deadline; any other error fails.
  std::unique_ptr<PgConnection> client_when_slot_frees() {
    std::unique_ptr<PgConnection> c;
    std::string last_error;
    const bool in = wait_until(
        [&] {
          try {
            c = std::make_unique<PgConnection>(conninfo());
            return true;
          } catch (const PgError& e) {
            last_error = e.what();
            return last_error.find("too many client connections") == std::string::npos;
          }
        },
        15s, "a client slot to free up");
    EXPECT_TRUE(in && c) << last_error << "\n" << tail_of(proxy_->log());
    if (c) {
      EXPECT_EQ(c->scalar("SELECT 40 + 2"), "42");
    }
    return c;
  }

  double refusals() {
    return metric_value(fetch_metrics(*proxy_), "pgshift_client_login_failures_total",
                        {{"reason", "too_many_clients"}})
        .value_or(-1);
  }

  // Rewrites the config with a new limit, sends SIGHUP and waits until it is applied.
  void reload(int limit) {
    const int before = count_of(proxy_->log(), "configuration reloaded");
    proxy_->write_config(config_yaml(GetParam(), limit));
    proxy_->send_signal(SIGHUP);
    ASSERT_TRUE(
        wait_until([&] { return count_of(proxy_->log(), "configuration reloaded") > before; }, 10s,
                   "the reload to be applied"))
        << proxy_->log();
  }

  std::unique_ptr<PgshiftProcess> proxy_;
};

TEST_P(ClientLimitTest, ClientPastTheLimitIsRefusedUntilOneLeaves) {
  start(3);
  std::vector<std::unique_ptr<PgConnection>> in;
  for (int i = 0; i < 3; ++i) in.push_back(client());
  expect_refused(3);
  for (auto& c : in) EXPECT_EQ(c->scalar("SELECT 1"), "1");  // the clients in are unaffected

  // The limit is per route: another route still takes clients.
  PgConnection elsewhere(conninfo("other"));
  EXPECT_EQ(elsewhere.scalar("SELECT current_database()"), kDatabase);

  const std::string m = fetch_metrics(*proxy_);
  EXPECT_EQ(
      metric_value(m, "pgshift_client_login_failures_total", {{"reason", "too_many_clients"}}), 1)
      << metric_lines(m, "login_failures");
  EXPECT_EQ(metric_value(m, "pgshift_client_connections", {{"route", "main"}}), 3)
      << metric_lines(m, "pgshift_client_connections");
  EXPECT_EQ(count_of(proxy_->log(), "client refused: route is at max_client_connections"), 1)
      << proxy_->log();
  EXPECT_THAT(proxy_->log(), Not(HasSubstr(kClientPassword)));

  in.erase(in.begin());  // one leaves: its slot is given back
  in.push_back(client_when_slot_frees());
  expect_refused(3);  // and the route is full again
  for (auto& c : in) EXPECT_EQ(c->scalar("SELECT 1"), "1");
}

// Logins racing over two I/O threads: exactly `limit` get in, every other one gets 53300.
TEST_P(ClientLimitTest, ConcurrentLoginsNeverGetPastTheLimit) {
  constexpr int kLimit = 4;
  constexpr int kClients = 10;
  start(kLimit);
  std::mutex mu;
  int logged_in = 0;
  std::vector<std::string> errors;
  std::latch all_tried(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      std::unique_ptr<PgConnection> c;
      std::string error;
      try {
        c = std::make_unique<PgConnection>(conninfo());
        c->scalar("SELECT 1");
      } catch (const std::exception& e) {
        error = e.what();
      }
      {
        std::lock_guard lock(mu);
        if (c && error.empty()) ++logged_in;
        if (!error.empty()) errors.push_back(error);
      }
      all_tried.arrive_and_wait();  // hold the connection until every login was tried
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(logged_in, kLimit) << tail_of(proxy_->log());
  ASSERT_EQ(errors.size(), static_cast<std::size_t>(kClients - kLimit));
  for (const auto& e : errors) EXPECT_THAT(e, HasSubstr(limit_message(kLimit)));
  EXPECT_EQ(refusals(), kClients - kLimit);
}

// A reload that lowers the limit keeps the clients in and refuses new ones; the count made
// before the reload is the one the new limit is checked against; raising it lets more in.
TEST_P(ClientLimitTest, ReloadKeepsClientsAndTheirCount) {
  start(3);
  std::vector<std::unique_ptr<PgConnection>> in;
  for (int i = 0; i < 3; ++i) in.push_back(client());

  reload(2);
  for (auto& c : in) EXPECT_EQ(c->scalar("SELECT 1"), "1");  // nobody was kicked
  expect_refused(2);                                         // 3 in, limit 2

  in.pop_back();
  in.pop_back();  // 1 in: one more fits only if the pre-reload clients were counted
  in.push_back(client_when_slot_frees());
  expect_refused(2);

  reload(4);
  for (auto& c : in) EXPECT_EQ(c->scalar("SELECT 1"), "1");
  in.push_back(client());
  in.push_back(client());
  expect_refused(4);
  EXPECT_GE(refusals(), 3);
}

// A reload that cannot be applied is counted (pgshift_errors_total{kind="config_reload"})
// and the running configuration, with its limit, stays.
TEST_P(ClientLimitTest, RejectedReloadIsCountedAndKeepsTheLimit) {
  start(1);
  auto first = client();
  const auto rejected = [&] {
    return metric_value(fetch_metrics(*proxy_), "pgshift_errors_total", {{"kind", "config_reload"}})
        .value_or(-1);
  };
  ASSERT_EQ(rejected(), 0) << metric_lines(fetch_metrics(*proxy_), "pgshift_errors_total");
  proxy_->write_config("routes: [ {name: broken\n");  // not YAML
  proxy_->send_signal(SIGHUP);
  EXPECT_TRUE(wait_until([&] { return rejected() == 1; }, 10s, "the rejected reload to be counted"))
      << proxy_->log();
  EXPECT_EQ(count_of(proxy_->log(), "reload rejected"), 1) << proxy_->log();
  EXPECT_EQ(first->scalar("SELECT 1"), "1");
  EXPECT_DOUBLE_EQ(refusals(), 0);
  try {
    PgConnection second(conninfo());
    ADD_FAILURE() << "the running limit of 1 client was not kept";
  } catch (const PgError& e) {
    EXPECT_NE(std::string(e.what()).find("too many client connections"), std::string::npos)
        << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(PoolModes, ClientLimitTest, ::testing::Values("session", "transaction"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
}  // namespace pgshift::test
