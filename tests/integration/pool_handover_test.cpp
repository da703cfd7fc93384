// Server connections move between pgshift's I/O threads without a new login (issue 15,
// docs/threading.md "Hand-over"): the real binary with two I/O threads and a pool smaller
// than its clients, whose load moves from the clients of one thread to those of the other
// and back. After warm-up the pool opens nothing and closes nothing: the same server
// backends serve every phase, and the hand-overs are counted.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/transaction_pool_helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const auto* const servers_env = SharedEnvironment<TxnServers>::install();
PgCluster& source() {
  return SharedEnvironment<TxnServers>::get().source;
}

// Clients in two groups that run short transactions while their group has the turn.
// pgshift assigns sessions to its I/O threads round robin in accept order, and the clients
// connect one after the other, so with two threads each group is one thread's clients.
class TurnTakingClients {
 public:
  static constexpr int kBoth = 2, kStop = -1;

  TurnTakingClients(const std::string& conninfo, int count) {
    for (int i = 0; i < count; ++i) connections_.emplace_back(conninfo);  // in order
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this, i] { run(i % 2, connections_[static_cast<std::size_t>(i)]); });
    }
  }
  ~TurnTakingClients() { set_turn(kStop); }

  void set_turn(int turn) {
    {
      std::lock_guard lock(mu_);
      turn_ = turn;
    }
    cv_.notify_all();
    if (turn == kStop) {
      for (auto& t : threads_) {
        if (t.joinable()) t.join();
      }
    }
  }
  int done(int group) const { return done_[group]; }
  std::vector<std::string> errors() {
    std::lock_guard lock(mu_);
    return errors_;
  }

 private:
  void run(int group, PgConnection& conn) {
    try {
      for (;;) {
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return turn_ == kStop || turn_ == kBoth || turn_ == group; });
          if (turn_ == kStop) return;
        }
        conn.exec("BEGIN");
        conn.exec("SELECT pg_backend_pid()");
        conn.exec("COMMIT");
        ++done_[group];
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      errors_.push_back(e.what());
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  int turn_ = kBoth;  // guarded by mu_
  std::vector<std::string> errors_;
  std::atomic<int> done_[2] = {0, 0};
  std::vector<PgConnection> connections_;
  std::vector<std::thread> threads_;  // last: started after the members they use
};

std::set<std::string> pool_backend_pids(const PgCluster& cluster) {
  PgConnection conn = cluster.connect();
  const QueryResult r =
      conn.exec(std::string("SELECT pid FROM pg_stat_activity WHERE usename = '") + kPoolUser +
                "' ORDER BY pid");
  std::set<std::string> out;
  for (const auto& row : r.rows) out.insert(row.at(0).value_or(""));
  return out;
}

double pool_metric(const PgshiftProcess& proxy, const std::string& name,
                   std::map<std::string, std::string> labels = {}) {
  labels["route"] = "main";
  labels["side"] = "source";
  return metric_value(fetch_metrics(proxy), name, labels).value_or(-1);
}

TEST(PoolHandoverTest, MovingLoadBetweenThreadsOpensNoServerConnection) {
  wait_no_pool_backends(source());
  constexpr int kPoolSize = 4, kClients = 12, kPerTurn = 300;
  auto proxy = start_txn_proxy(source(), {.pool_size = kPoolSize, .threads = 2});
  const auto connects = [&] {
    return pool_metric(proxy, "pgshift_server_connects_total", {{"result", "ok"}});
  };
  const auto handovers = [&] { return pool_metric(proxy, "pgshift_server_handovers_total"); };
  TurnTakingClients clients(client_conninfo(proxy), kClients);

  // Warm-up: both threads busy until the pool is full.
  ASSERT_TRUE(wait_until(
      [&] { return connects() == kPoolSize && clients.done(0) >= 100 && clients.done(1) >= 100; },
      60s, "the pool to fill"));
  const std::set<std::string> backends = pool_backend_pids(source());
  ASSERT_EQ(backends.size(), static_cast<std::size_t>(kPoolSize));
  const double handovers_at_start = handovers();

  // The load moves to one thread's clients, then to the other's, twice: each time the busy
  // thread needs the other thread's connections.
  for (int turn : {0, 1, 0, 1}) {
    clients.set_turn(turn);
    const int target = clients.done(turn) + kPerTurn;
    ASSERT_TRUE(wait_until([&] { return clients.done(turn) >= target; }, 60s,
                           "transactions of group " + std::to_string(turn)))
        << tail_of(proxy.log());
    EXPECT_EQ(connects(), kPoolSize) << "turn " << turn << ": a server connection was opened\n"
                                     << fetch_admin(proxy, "/v1/pools", false);
  }
  clients.set_turn(TurnTakingClients::kStop);
  EXPECT_TRUE(clients.errors().empty()) << clients.errors().front();
  EXPECT_EQ(pool_backend_pids(source()), backends)
      << "the same server backends serve every turn (none closed and replaced)";
  EXPECT_GT(handovers(), handovers_at_start) << "the turns did not move any connection";
  // Nothing was closed since the start, and `connects` there agrees with the metric.
  const std::string pools = fetch_admin(proxy, "/v1/pools");
  EXPECT_THAT(pools, HasSubstr("\"closed\":0,")) << pools;
  EXPECT_THAT(pools, HasSubstr("\"connects\":" + std::to_string(kPoolSize) + ",")) << pools;
}

}  // namespace
}  // namespace pgshift::test
