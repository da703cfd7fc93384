// Idle clients parked on their thread's shared epoll set (proxy/session/thread_sessions.*,
// docs/architecture.md "Hot and idle sessions"), through the real pgshift binary against
// PostgreSQL 15 with two I/O threads: clients that cooled down (no hot session left) wake up
// for their next query, keep their prepared statements, can be cancelled, and a SIGTERM
// reaches every parked client with FATAL 57P01. Many parked clients leaving at once take no
// receive block each (the wake-up is read on the stack first).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "tests/integration/helpers.hpp"
#include "tests/integration/transaction_pool_helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class IdleParkTest : public TxnPoolFixture {};

PgshiftProcess start_proxy() {
  return start_txn_proxy(source(), {.pool_size = 4, .threads = 2});
}

double hot_sessions(PgshiftProcess& proxy) {
  return metric_value(fetch_metrics(proxy), "pgshift_client_connections_hot").value_or(-1);
}

// Every session cooled down: each client is parked (the IdleSweeper's one to two seconds).
bool wait_all_parked(PgshiftProcess& proxy) {
  return wait_until([&] { return hot_sessions(proxy) == 0; }, 15s, "no hot session");
}

TEST_F(IdleParkTest, ParkedClientsWakeForTheirNextQueryOnBothThreads) {
  PgshiftProcess proxy = start_proxy();
  std::vector<std::unique_ptr<PgConnection>> clients;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<PgConnection>(client_conninfo(proxy)));
    EXPECT_EQ(clients.back()->scalar("SELECT " + std::to_string(i)), std::to_string(i));
  }
  prepare(*clients[0], "idle_stmt", "SELECT $1::int * 2", 1);
  ASSERT_GT(hot_sessions(proxy), 0);  // they just ran something
  ASSERT_TRUE(wait_all_parked(proxy)) << tail_of(proxy.log());
  // Twice: a client woken from the park goes back to it after the next quiet spell.
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 12; ++i) {
      EXPECT_EQ(clients[static_cast<std::size_t>(i)]->scalar("SELECT " + std::to_string(i + 100)),
                std::to_string(i + 100))
          << tail_of(proxy.log());
    }
    EXPECT_EQ(exec_prepared(*clients[0], "idle_stmt", {"21"}), "42");
    ASSERT_TRUE(wait_all_parked(proxy)) << tail_of(proxy.log());
  }
}

TEST_F(IdleParkTest, CancelReachesTheServerOfAClientThatWasParked) {
  PgshiftProcess proxy = start_proxy();
  PgConnection conn(client_conninfo(proxy));
  EXPECT_EQ(conn.scalar("SELECT 1"), "1");
  ASSERT_TRUE(wait_all_parked(proxy)) << tail_of(proxy.log());
  const CancelOutcome cancel = cancel_pg_sleep(conn, source(), "idle-park-cancel");
  ASSERT_TRUE(cancel.started) << tail_of(proxy.log());
  EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
  EXPECT_EQ(conn.scalar("SELECT 2"), "2");
}

double metric_or_fail(PgshiftProcess& proxy, const std::string& name) {
  const auto v = metric_value(fetch_metrics(proxy), name);
  EXPECT_TRUE(v.has_value()) << name << " is not exported";
  return v.value_or(-1);
}

// A pool shut down, a node drained: every parked client goes at once, half with a Terminate
// message (PQfinish) and half with a bare close. Each wake-up is read into a small stack
// buffer before the client direction takes a 16 KiB receive block, so the closes take none
// (they once took one each, all at the same time: 150 MiB for 10,000 clients).
TEST_F(IdleParkTest, ParkedClientsLeavingAtOnceTakeNoReceiveBlockEach) {
  constexpr int kClients = 300;
  PgshiftProcess proxy = start_proxy();
  std::vector<std::unique_ptr<PgConnection>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(std::make_unique<PgConnection>(client_conninfo(proxy)));
    ASSERT_EQ(clients.back()->scalar("SELECT 1"), "1");
  }
  ASSERT_TRUE(wait_all_parked(proxy)) << tail_of(proxy.log());
  const double before = metric_or_fail(proxy, "pgshift_receive_blocks_allocated_total");
  for (int i = 0; i < kClients; i += 2) {
    ::shutdown(PQsocket(clients[static_cast<std::size_t>(i)]->native()), SHUT_RDWR);
  }
  clients.clear();  // the others send Terminate
  ASSERT_TRUE(wait_until(
      [&] {
        return metric_value(fetch_metrics(proxy), "pgshift_client_connections",
                            {{"route", "main"}}) == 0;
      },
      15s, "every client session to end"))
      << tail_of(proxy.log());
  const double taken = metric_or_fail(proxy, "pgshift_receive_blocks_allocated_total") - before;
  // A Terminate's bytes go into a block, handled and given back before the next wake-up:
  // at most a few per thread, never one per client.
  EXPECT_LE(taken, 8) << kClients << " clients left; blocks allocated: " << taken;
}

// Waits for the FATAL that arrives while conn is idle (libpq hands it to the notice
// receiver) or for the close; returns the notices seen.
std::vector<std::string> notices_until_closed(PgConnection& conn) {
  wait_until(
      [&] {
        const bool eof = PQconsumeInput(conn.native()) == 0;
        PQisBusy(conn.native());
        return eof || !conn.notices().empty();
      },
      15s, "the client to see the end of its session");
  return conn.notices();
}

TEST_F(IdleParkTest, SigtermTellsEveryParkedClient) {
  PgshiftProcess proxy = start_proxy();
  std::vector<std::unique_ptr<PgConnection>> clients;
  for (int i = 0; i < 6; ++i) {
    clients.push_back(std::make_unique<PgConnection>(client_conninfo(proxy)));
    EXPECT_EQ(clients.back()->scalar("SELECT 1"), "1");
  }
  ASSERT_TRUE(wait_all_parked(proxy)) << tail_of(proxy.log());
  proxy.send_signal(SIGTERM);
  for (auto& c : clients) {
    const auto notices = notices_until_closed(*c);
    ASSERT_FALSE(notices.empty()) << "a bare close\n" << tail_of(proxy.log());
    EXPECT_THAT(notices[0],
                HasSubstr("FATAL:  terminating connection due to administrator command"));
  }
  const auto status = proxy.process().wait_for(15s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(status->success()) << status->to_string();
}

}  // namespace
}  // namespace pgshift::test
