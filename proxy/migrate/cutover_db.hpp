#pragma once
// The database-level steps of a cutover and a rollback (docs/cutover.md), each one small and
// idempotent where it can be, on blocking pgclient connections. The coordinator
// (cutover_coordinator.hpp) strings them together; the integration tests drive them directly.
//
// The fence: a statement-level trigger pgshift_fence, BEFORE INSERT OR UPDATE OR DELETE OR
// TRUNCATE, on every replicated table of the route, executing pgshift.fence(route, side) which
// raises SQLSTATE 25006 (read_only_sql_transaction). It stops every ordinary writer, superusers
// and table owners included, and it does not stop the logical replication apply worker (which
// runs with session_replication_role = replica, where ordinary triggers do not fire), so the
// fenced side still receives the other side's stream. It cannot stop a role that drops the
// trigger or sets session_replication_role = replica itself (superusers and owners can).
//
// Thread-safety: free functions; a Connection is used by one thread at a time.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/pgclient/connection.hpp"

namespace pgshift::migrate {

struct TableName {
  std::string schema, name;
  std::string qualified() const;  // quoted: "public"."orders"
  bool operator==(const TableName&) const = default;
};

// The tables of `publication` on this database, pgshift.* excluded, sorted. Throws
// pgclient::Error naming the publication and the fix when it does not exist.
std::vector<TableName> publication_tables(pgclient::Connection& db, std::string_view publication);

// Creates schema pgshift and pgshift.heartbeat if missing (names.hpp kHeartbeatDdl).
void ensure_heartbeat(pgclient::Connection& db);

// ---- drain -----------------------------------------------------------------------------
// The database's clock now (clock_timestamp(), text form), to compare with xact_start.
std::string database_now(pgclient::Connection& db);
// Waits until no other client backend of this database has a transaction that began before
// `since` and that may write (it holds a transaction id or sits idle in a transaction).
// Returns the number still open when `timeout` passed (0: drained).
int wait_for_transactions_before(pgclient::Connection& db, const std::string& since,
                                 std::chrono::milliseconds timeout);

// ---- fence -----------------------------------------------------------------------------
struct FenceStats {
  int attempts = 0;  // lock attempts (a busy table makes an attempt give up after 50 ms)
  std::chrono::milliseconds waited{0};
};
// Fences `tables` in one transaction: SHARE ROW EXCLUSIVE locks (which wait out in-flight
// writers of any client and block new ones, but not readers), then the triggers. Each attempt
// waits at most 50 ms for a lock and gives up (so the fence, never a client, is the victim of
// a lock cycle); attempts repeat until `timeout`, then pgclient::Error 55P03 is thrown and
// nothing is fenced. `moved_to` ("target" / "source") goes into the error clients see.
FenceStats fence_tables(pgclient::Connection& db, const std::vector<TableName>& tables,
                        std::string_view route, std::string_view moved_to,
                        std::chrono::milliseconds timeout);
// Drops the fence triggers of `tables` (missing ones are fine).
void unfence_tables(pgclient::Connection& db, const std::vector<TableName>& tables);
// Every table of this database that carries the fence trigger, sorted.
std::vector<TableName> fenced_tables(pgclient::Connection& db);

// ---- lag marker --------------------------------------------------------------------------
// Bumps the (route, origin) row of pgshift.heartbeat and returns its new seq. The row is in
// both publications, so it travels with the stream that leaves this side.
std::int64_t write_marker(pgclient::Connection& db, std::string_view route,
                          std::string_view origin);
// Polls until the (route, origin) row shows seq >= `seq`; false when `timeout` passed.
bool wait_for_marker(pgclient::Connection& db, std::string_view route, std::string_view origin,
                     std::int64_t seq, std::chrono::milliseconds timeout);

// ---- sequences ---------------------------------------------------------------------------
struct SequenceCopy {
  std::string name;  // schema.sequence
  std::int64_t from_value = 0;
  std::int64_t to_value = 0;  // what the destination was set to
};
// Sets every sequence of `to` (pgshift.* excluded, sequences not owned by a column included)
// to max(its own last value, `from`'s last value + gap), in one transaction. Sequences that
// `from` never used are left alone. Throws pgclient::Error naming a sequence that `to` lacks.
std::vector<SequenceCopy> copy_sequences(pgclient::Connection& from, pgclient::Connection& to,
                                         std::int64_t gap);

// ---- streams -----------------------------------------------------------------------------
struct SubscriptionHealth {
  bool exists = false;
  bool enabled = false;
  bool worker_running = false;  // an apply worker is attached (pg_stat_subscription.pid)
  int tables = 0;
  int ready = 0;
  std::vector<std::string> not_ready;  // "public.orders (d)" for tables not in state r
};
SubscriptionHealth subscription_health(pgclient::Connection& subscriber, std::string_view name);
bool publication_exists(pgclient::Connection& db, std::string_view name);
// FOR TABLE `tables` and pgshift.heartbeat. Throws if it exists.
void create_publication(pgclient::Connection& db, std::string_view name,
                        const std::vector<TableName>& tables);
void drop_publication(pgclient::Connection& db, std::string_view name);  // IF EXISTS
// copy_data = false, create_slot = true: the stream starts at this moment on the publisher.
// `publisher` is the conninfo the subscriber uses to reach the publisher (password included).
void create_subscription(pgclient::Connection& subscriber, std::string_view name,
                         const std::string& publisher, std::string_view publication);
// Drops the subscription and, through it, its slot on the publisher. IF EXISTS.
void drop_subscription(pgclient::Connection& subscriber, std::string_view name);

}  // namespace pgshift::migrate
