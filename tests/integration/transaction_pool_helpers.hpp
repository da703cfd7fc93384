#pragma once
// Shared by the transaction-pooling integration binaries (transaction_pool_test,
// transaction_pool_state_test): one PostgreSQL 15 cluster with a dedicated pool role, a
// pgshift in `pool: {mode: transaction}` in front of it, counting pgshift's server backends in
// pg_stat_activity, and libpq protocol-level prepared statements. /metrics: tests/support
// (metrics.hpp).
//
// Clients log in to pgshift as app/app-pw; pgshift logs in upstream as "pooler", a role used
// by nothing else, so `usename = 'pooler'` in pg_stat_activity is exactly pgshift's servers.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/support.hpp"

namespace pgshift::test {

inline constexpr const char* kClientUser = "app";
inline constexpr const char* kClientPassword = "app-pw";
inline constexpr const char* kPoolUser = "pooler";
inline constexpr const char* kDatabase = "txn";

struct TxnServers {
  // Connections are logged: which server connections pgshift opened and closed, and why.
  PgCluster source{
      {.name = "txn-source",
       .settings = {
           {"max_connections", "100"}, {"log_connections", "on"}, {"log_disconnections", "on"}}}};
  TxnServers() {
    source.create_role(kPoolUser, "pooler-pw");
    source.create_database(kDatabase, kPoolUser);
  }
};

struct TxnProxyOptions {
  int pool_size = 10;
  int query_wait_timeout_ms = 30000;
  int threads = 1;                         // 0: one per core
  int prepared_statement_cache_size = -1;  // -1: the default
};

// pgshift with one transaction-mode route ("main") to cluster as the pool role.
inline PgshiftProcess start_txn_proxy(const PgCluster& cluster, const TxnProxyOptions& o) {
  ConfigSpec spec;
  RouteSpec route{.source = upstream_of(cluster, kPoolUser),
                  .pool_mode = "transaction",
                  .pool_size = o.pool_size};
  // Continues the route's pool: block (RouteSpec emits mode and size there).
  route.extra_yaml = "  query_wait_timeout_ms: " + std::to_string(o.query_wait_timeout_ms) + "\n";
  if (o.prepared_statement_cache_size >= 0) {
    route.extra_yaml +=
        "  prepared_statement_cache_size: " + std::to_string(o.prepared_statement_cache_size) +
        "\n";
  }
  spec.routes.push_back(route);
  spec.extra_yaml = "threads: " + std::to_string(o.threads) + "\n";
  return PgshiftProcess(
      {.config_yaml = spec.to_yaml(), .users = users_file_text({{kClientUser, kClientPassword}})});
}

inline std::string client_conninfo(const PgshiftProcess& proxy) {
  return proxy.conninfo(kClientUser, kClientPassword, kDatabase);
}

// The end of a long text (a log), for failure messages.
inline std::string tail_of(const std::string& text, std::size_t max_chars = 6000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

// pgshift's server connections right now, seen by the server.
inline int pool_backends(const PgCluster& cluster) {
  return std::stoi(
      cluster
          .exec(std::string("SELECT count(*) FROM pg_stat_activity WHERE usename = '") + kPoolUser +
                "'")
          .scalar());
}

// Waits until the backends of an earlier test's pgshift have gone.
inline void wait_no_pool_backends(const PgCluster& cluster) {
  using namespace std::chrono_literals;
  ASSERT_TRUE(wait_until([&] { return pool_backends(cluster) == 0; }, 20s,
                         "server backends of an earlier pgshift to exit"));
}

// Samples pool_backends() in a thread, every 5 ms from construction until stop(), over one
// superuser connection; max() is the highest count seen.
class BackendSampler {
 public:
  explicit BackendSampler(const PgCluster& cluster)
      : thread_([this, &cluster] {
          try {
            PgConnection conn = cluster.connect();
            const std::string sql =
                std::string("SELECT count(*) FROM pg_stat_activity WHERE usename = '") + kPoolUser +
                "'";
            std::unique_lock lock(mutex_);
            while (!stop_) {
              lock.unlock();
              const QueryResult r = conn.exec(sql);
              max_ = std::max(max_.load(), std::stoi(r.scalar()));
              ++samples_;
              lock.lock();
              // A sampling period, not a synchronisation: stop() wakes it at once.
              wake_.wait_for(lock, std::chrono::milliseconds(5), [this] { return stop_; });
            }
          } catch (const std::exception& e) {
            error_ = e.what();
          }
        }) {}
  ~BackendSampler() { stop(); }
  BackendSampler(const BackendSampler&) = delete;
  BackendSampler& operator=(const BackendSampler&) = delete;

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  int max() const { return max_; }
  int samples() const { return samples_; }
  const std::string& error() const { return error_; }  // read after stop()

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mutex_
  std::atomic<int> max_{0};
  std::atomic<int> samples_{0};
  std::string error_;
  std::thread thread_;  // last: starts after the members it uses
};

// Clients running short transactions in threads until stop(); errors are collected.
class BusyClients {
 public:
  BusyClients(const std::string& conninfo, int count) {
    for (int i = 0; i < count; ++i) {
      threads_.emplace_back([this, conninfo] {
        try {
          PgConnection conn(conninfo);
          while (!stop_) {
            conn.exec("BEGIN");
            conn.exec("SELECT pg_backend_pid()");
            conn.exec("COMMIT");
            ++done_;
          }
        } catch (const std::exception& e) {
          std::lock_guard lock(mutex_);
          errors_.push_back(e.what());
        }
      });
    }
  }
  ~BusyClients() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int done() const { return done_; }
  std::vector<std::string> errors() {
    std::lock_guard lock(mutex_);
    return errors_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> done_{0};
  std::mutex mutex_;
  std::vector<std::string> errors_;
  std::vector<std::thread> threads_;
};

// ---- protocol-level (named) prepared statements through libpq ----

inline void throw_unless_ok(PGconn* conn, PGresult* result, const std::string& what) {
  if (result == nullptr) throw PgError(what + ": " + PQerrorMessage(conn), "");
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  std::string message = what + ": " + PQresultErrorMessage(result);
  std::string sqlstate = state != nullptr ? state : "";
  PQclear(result);
  throw PgError(message, sqlstate);
}

// Parse (+ Sync) of a named statement with untyped parameters.
inline void prepare(PgConnection& conn, const std::string& name, const std::string& sql,
                    int n_params) {
  PGresult* r = PQprepare(conn.native(), name.c_str(), sql.c_str(), n_params, nullptr);
  throw_unless_ok(conn.native(), r, "PQprepare " + name);
  PQclear(r);
}

// Bind/Execute (+ Sync) of a named statement; the first column of the first row.
inline std::string exec_prepared(PgConnection& conn, const std::string& name,
                                 const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p.c_str());
  PGresult* r = PQexecPrepared(conn.native(), name.c_str(), static_cast<int>(values.size()),
                               values.data(), nullptr, nullptr, 0);
  throw_unless_ok(conn.native(), r, "PQexecPrepared " + name);
  std::string value = PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  return value;
}

// The SQLSTATE fn throws as a PgError, or "" when it does not throw.
template <typename Fn>
std::string sqlstate_of(Fn&& fn) {
  try {
    fn();
  } catch (const PgError& e) {
    return e.sqlstate().empty() ? std::string("(no sqlstate) ") + e.what() : e.sqlstate();
  }
  return "";
}

// The binary's cluster, started once per test binary that includes this header.
inline const auto* const txn_servers_env = SharedEnvironment<TxnServers>::install();
inline PgCluster& source() {
  return SharedEnvironment<TxnServers>::get().source;
}

// Each test starts with none of pgshift's server backends left over from the one before.
class TxnPoolFixture : public ::testing::Test {
 protected:
  void SetUp() override { wait_no_pool_backends(source()); }
};

}  // namespace pgshift::test
