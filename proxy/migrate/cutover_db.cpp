#include "proxy/migrate/cutover_db.hpp"

#include <algorithm>
#include <charconv>
#include <map>
#include <thread>

#include "proxy/migrate/names.hpp"

namespace pgshift::migrate {
namespace {

using pgclient::Connection;
using pgclient::quote_ident;
using pgclient::quote_literal;
using Clock = std::chrono::steady_clock;

constexpr auto kPoll = std::chrono::milliseconds(5);
constexpr auto kLockAttempt = std::chrono::milliseconds(50);

std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::vector<TableName> tables_of(const pgclient::Result& r) {
  std::vector<TableName> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({std::string(r.get(i, 0)), std::string(r.get(i, 1))});
  return out;
}

// The trigger function. TG_ARGV: route, the side the route moved to. The one session it
// lets through is a sidecar's mirror replay of that route (sync.mode mirror), which connects
// with `-c pgshift.mirror_replay=ROUTE` (mirror/replay.cpp): it carries the authoritative
// side's writes here, as the logical apply worker does (which the trigger never sees: it
// runs with session_replication_role = replica). See docs/cutover.md, "What the fence stops".
constexpr std::string_view kFenceFunctionSql = R"sql(
CREATE OR REPLACE FUNCTION pgshift.fence() RETURNS trigger LANGUAGE plpgsql AS $pgshift$
BEGIN
  IF current_setting('pgshift.mirror_replay', true) = TG_ARGV[0] THEN
    RETURN NULL;
  END IF;
  RAISE EXCEPTION USING
    ERRCODE = 'read_only_sql_transaction',
    MESSAGE = format('pgshift: route %s moved to the %s database; writes here are fenced',
                     TG_ARGV[0], TG_ARGV[1]),
    DETAIL = format('Table %I.%I carries the pgshift_fence trigger of a cutover or rollback.',
                    TG_TABLE_SCHEMA, TG_TABLE_NAME),
    HINT = 'Write through pgshift, or to the database the route moved to.';
END
$pgshift$)sql";

bool retryable_lock_error(const pgclient::Error& e) {
  return e.sqlstate() == "55P03" || e.sqlstate() == "40P01";
}

// Runs body(); on a database error the open transaction is rolled back first (so the
// connection stays usable) and the error rethrown.
template <class Body>
auto rolled_back_on_error(Connection& db, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const pgclient::Error&) {
    try {
      db.exec("ROLLBACK");
    } catch (const pgclient::Error&) {
    }
    throw;
  }
}

}  // namespace

std::string TableName::qualified() const {
  return quote_ident(schema) + "." + quote_ident(name);
}

std::vector<TableName> publication_tables(Connection& db, std::string_view publication) {
  auto exists =
      db.exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {std::string(publication)});
  if (exists.rows() == 0) {
    throw pgclient::Error(pgclient::describe(db.info()) + ": publication \"" +
                              std::string(publication) + "\" does not exist",
                          "42704", {}, "Start the sync first: pgshift sync start ROUTE.");
  }
  return tables_of(
      db.exec("SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1"
              " AND schemaname <> 'pgshift' ORDER BY 1, 2",
              {std::string(publication)}));
}

void ensure_heartbeat(Connection& db) {
  db.exec(kHeartbeatDdl);
}

std::string database_now(Connection& db) {
  return std::string(db.exec("SELECT clock_timestamp()").get(0, 0));
}

int wait_for_transactions_before(Connection& db, const std::string& since,
                                 std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto r = db.exec(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        " AND xact_start < $1::timestamptz"
        " AND (backend_xid IS NOT NULL OR state LIKE 'idle in transaction%')",
        {since});
    const int open = static_cast<int>(to_int(r.get(0, 0)));
    if (open == 0 || Clock::now() >= deadline) return open;
    std::this_thread::sleep_for(kPoll);
  }
}

FenceStats fence_tables(Connection& db, const std::vector<TableName>& tables,
                        std::string_view route, std::string_view moved_to,
                        std::chrono::milliseconds timeout) {
  FenceStats stats;
  const auto start = Clock::now();
  std::string list;
  for (const auto& t : tables) list += (list.empty() ? "" : ", ") + t.qualified();
  std::string sql = "BEGIN; SET LOCAL lock_timeout = '" + std::to_string(kLockAttempt.count()) +
                    "ms'; CREATE SCHEMA IF NOT EXISTS pgshift;" + std::string(kFenceFunctionSql) +
                    ";";
  if (!tables.empty()) sql += "LOCK TABLE " + list + " IN SHARE ROW EXCLUSIVE MODE;";
  for (const auto& t : tables) {
    sql += "CREATE OR REPLACE TRIGGER " + std::string(kFenceTrigger) +
           " BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON " + t.qualified() +
           " FOR EACH STATEMENT EXECUTE FUNCTION pgshift.fence(" + quote_literal(route) + ", " +
           quote_literal(moved_to) + ");";
  }
  sql += "COMMIT";
  for (;;) {
    ++stats.attempts;
    try {
      rolled_back_on_error(db, [&] { db.exec(sql); });
      stats.waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
      return stats;
    } catch (const pgclient::Error& e) {
      if (!retryable_lock_error(e)) throw;
      if (Clock::now() - start >= timeout) {
        throw pgclient::Error(
            pgclient::describe(db.info()) + ": could not fence the tables of route " +
                std::string(route) + " within " + std::to_string(timeout.count()) +
                " ms: a transaction kept a table locked (" + e.what() + ")",
            "55P03", {}, "Raise --drain-timeout-ms, or end the long transaction on that table.");
      }
    }
  }
}

void unfence_tables(Connection& db, const std::vector<TableName>& tables) {
  if (tables.empty()) return;
  std::string sql = "BEGIN;";
  for (const auto& t : tables) {
    sql += "DROP TRIGGER IF EXISTS " + std::string(kFenceTrigger) + " ON " + t.qualified() + ";";
  }
  sql += "COMMIT";
  rolled_back_on_error(db, [&] { db.exec(sql); });
}

std::vector<TableName> fenced_tables(Connection& db) {
  return tables_of(
      db.exec("SELECT n.nspname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
              " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE t.tgname = $1 ORDER BY 1, 2",
              {std::string(kFenceTrigger)}));
}

std::int64_t write_marker(Connection& db, std::string_view route, std::string_view origin) {
  // synchronous_commit on for this transaction: its commit flushes the WAL at once, so the
  // walsender sends the marker (and everything before it) now rather than at the WAL
  // writer's next round (up to wal_writer_delay later when the server runs with it off).
  db.exec("BEGIN; SET LOCAL synchronous_commit = on");
  return rolled_back_on_error(db, [&] {
    auto r = db.exec(
        "INSERT INTO pgshift.heartbeat AS h (route, origin, seq, origin_time)"
        " VALUES ($1, $2, 1, clock_timestamp()) ON CONFLICT (route, origin) DO UPDATE"
        " SET seq = h.seq + 1, origin_time = clock_timestamp() RETURNING seq",
        {std::string(route), std::string(origin)});
    db.exec("COMMIT");
    return to_int(r.get(0, 0));
  });
}

bool wait_for_marker(Connection& db, std::string_view route, std::string_view origin,
                     std::int64_t seq, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    auto r = db.exec("SELECT seq FROM pgshift.heartbeat WHERE route = $1 AND origin = $2",
                     {std::string(route), std::string(origin)});
    if (r.rows() > 0 && to_int(r.get(0, 0)) >= seq) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPoll);
  }
}

std::vector<SequenceCopy> copy_sequences(Connection& from, Connection& to, std::int64_t gap) {
  constexpr std::string_view kList =
      "SELECT schemaname || '.' || sequencename, last_value, max_value,"
      " quote_ident(schemaname) || '.' || quote_ident(sequencename),"
      // pg_sequences shows NULL both for a sequence never used and for one the role may not
      // read; the second must not pass for the first.
      " has_sequence_privilege(quote_ident(schemaname) || '.' || quote_ident(sequencename),"
      " 'SELECT,USAGE')"
      " FROM pg_sequences WHERE schemaname <> 'pgshift' ORDER BY 1";
  auto src = from.exec(kList);
  auto dst = to.exec(kList);
  struct Dest {
    std::optional<std::int64_t> last;
    std::int64_t max = 0;
  };
  std::map<std::string, Dest, std::less<>> dest;
  for (int i = 0; i < dst.rows(); ++i) {
    Dest d;
    if (!dst.is_null(i, 1)) d.last = to_int(dst.get(i, 1));
    d.max = to_int(dst.get(i, 2));
    dest.emplace(std::string(dst.get(i, 0)), d);
  }
  std::vector<SequenceCopy> out;
  std::string sql = "BEGIN;";
  for (int i = 0; i < src.rows(); ++i) {
    const std::string name(src.get(i, 0));
    if (src.get(i, 4) != "t") {
      throw pgclient::Error(pgclient::describe(from.info()) + ": cannot read sequence " + name,
                            "42501", {},
                            "GRANT SELECT ON SEQUENCE " + std::string(src.get(i, 3)) +
                                " to the route's user on both sides.");
    }
    if (src.is_null(i, 1)) continue;  // never used on this side: nothing to carry
    auto it = dest.find(name);
    if (it == dest.end()) {
      throw pgclient::Error(pgclient::describe(to.info()) + ": sequence " + name + " exists on " +
                                pgclient::describe(from.info()) + " but not here",
                            "42P01", {}, "Create it (pg_dump --schema-only) before switching.");
    }
    SequenceCopy c{name, to_int(src.get(i, 1)), 0};
    c.to_value = std::max(c.from_value + gap, it->second.last.value_or(c.from_value + gap));
    if (c.to_value > it->second.max) c.to_value = std::max(c.from_value, it->second.max);
    sql += "SELECT setval(" + quote_literal(std::string(src.get(i, 3))) + ", " +
           std::to_string(c.to_value) + ", true);";
    out.push_back(std::move(c));
  }
  sql += "COMMIT";
  rolled_back_on_error(to, [&] { to.exec(sql); });
  return out;
}

SubscriptionHealth subscription_health(Connection& subscriber, std::string_view name) {
  SubscriptionHealth h;
  auto sub = subscriber.exec(
      "SELECT s.subenabled, EXISTS (SELECT 1 FROM pg_stat_subscription st"
      " WHERE st.subid = s.oid AND st.pid IS NOT NULL AND st.relid IS NULL)"
      " FROM pg_subscription s WHERE s.subname = $1 AND s.subdbid ="
      " (SELECT oid FROM pg_database WHERE datname = current_database())",
      {std::string(name)});
  if (sub.rows() == 0) return h;
  h.exists = true;
  h.enabled = sub.get(0, 0) == "t";
  h.worker_running = sub.get(0, 1) == "t";
  auto rel = subscriber.exec(
      "SELECT n.nspname || '.' || c.relname, r.srsubstate FROM pg_subscription_rel r"
      " JOIN pg_subscription s ON s.oid = r.srsubid JOIN pg_class c ON c.oid = r.srrelid"
      " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE s.subname = $1 ORDER BY 1",
      {std::string(name)});
  h.tables = rel.rows();
  for (int i = 0; i < rel.rows(); ++i) {
    if (rel.get(i, 1) == "r") {
      ++h.ready;
    } else {
      h.not_ready.push_back(std::string(rel.get(i, 0)) + " (" + std::string(rel.get(i, 1)) + ")");
    }
  }
  return h;
}

bool publication_exists(Connection& db, std::string_view name) {
  return db.exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {std::string(name)}).rows() > 0;
}

void create_publication(Connection& db, std::string_view name,
                        const std::vector<TableName>& tables) {
  std::string list;
  for (const auto& t : tables) list += t.qualified() + ", ";
  list += kHeartbeatTable;
  db.exec("CREATE PUBLICATION " + quote_ident(name) + " FOR TABLE " + list);
}

void drop_publication(Connection& db, std::string_view name) {
  db.exec("DROP PUBLICATION IF EXISTS " + quote_ident(name));
}

void create_subscription(Connection& subscriber, std::string_view name,
                         const std::string& publisher, std::string_view publication) {
  subscriber.exec("CREATE SUBSCRIPTION " + quote_ident(name) + " CONNECTION " +
                  quote_literal(publisher) + " PUBLICATION " + quote_ident(publication) +
                  " WITH (copy_data = false, create_slot = true, enabled = true)");
}

void drop_subscription(Connection& subscriber, std::string_view name) {
  subscriber.exec("DROP SUBSCRIPTION IF EXISTS " + quote_ident(name));
}

}  // namespace pgshift::migrate
