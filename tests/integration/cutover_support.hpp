#pragma once
// Fixture of cutover_test (issue 13): a source and a target PostgreSQL 15 cluster with
// wal_level = logical, database "app" on both with the same schema, and logical sync from the
// source to the target set up with plain SQL the way `pgshift sync start` does it (names from
// proxy/migrate/names.hpp):
//   ledger(id bigint PK, writer text)   unique ids from the ledger client
//   orders(id serial PK, note text)     a serial id (sequence owned by a column)
//   standalone_seq                      a sequence not owned by any column
//   pgbench_* (scale 1)                 for TPC-B load (pgbench_history REPLICA IDENTITY FULL)
// plus pgshift.heartbeat on both sides. The clusters start once per binary.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "proxy/migrate/cutover_coordinator.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {

inline constexpr const char* kRoute = "app";
inline constexpr const char* kDb = "app";

struct CutoverServers {
  PgCluster source;
  PgCluster target;
  CutoverServers();
  // Back to the start state: forward subscription healthy, no reverse stream, no fence,
  // empty ledger/orders (both sides equal).
  void reset();
  pgclient::ConnInfo conninfo(const PgCluster& c) const;
  migrate::SwitchEndpoints endpoints() const;
  std::string libpq(const PgCluster& c) const;  // conninfo string to database app
};
CutoverServers& cutover_servers();

pgclient::ConnInfo app_conninfo(const PgCluster& c);  // superuser, database app
// Waits until the subscription `name` on `subscriber` has every table ready and a worker.
void wait_stream_ready(const PgCluster& subscriber, const std::string& name);
// Waits until a marker written on `from` is visible on `to` (origin = from's side name).
void wait_caught_up(const PgCluster& from, const PgCluster& to, const std::string& origin);

// "count:md5" of each replicated table, for equality checks.
std::vector<std::string> table_fingerprints(const PgCluster& c);

// Inserts unique ids one autocommit statement at a time over one connection, recording each
// acknowledged id and each error; reconnects after a connection error. `per_second` > 0
// paces the inserts (load shaping, like pgbench -R: a mirror replays on the same two cores).
class LedgerWriter {
 public:
  LedgerWriter(std::string conninfo, std::int64_t first_id, int per_second = 0);
  ~LedgerWriter();
  void stop();
  std::set<std::int64_t> acknowledged() const;
  std::vector<std::string> errors() const;
  std::int64_t count() const { return acked_.load(); }

 private:
  void loop();
  std::string conninfo_;
  int per_second_ = 0;
  std::atomic<std::int64_t> next_;
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> acked_{0};
  mutable std::mutex mu_;
  std::set<std::int64_t> ids_;
  std::vector<std::string> errors_;
  std::thread thread_;
};

// Ids in the ledger of database app on `c`.
std::set<std::int64_t> ledger_ids(const PgCluster& c);
// The ids of `acked` that `c` lacks (at most 5, for the message).
std::vector<std::int64_t> missing_on(const PgCluster& c, const std::set<std::int64_t>& acked);

}  // namespace pgshift::test
