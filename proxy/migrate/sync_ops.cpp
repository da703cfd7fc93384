// `pgshift sync status ROUTE [--json]` and `pgshift sync stop ROUTE`.
#include <boost/json.hpp>
#include <chrono>
#include <iostream>
#include <optional>
#include <thread>

#include "proxy/migrate/sync.hpp"

namespace pgshift::migrate {

namespace {

using pgclient::Connection;
using pgclient::quote_ident;
using pgclient::quote_literal;
namespace json = boost::json;

std::optional<Connection> try_connect(const pgclient::ConnInfo& info, json::array& errors) {
  try {
    return Connection::connect(info);
  } catch (const std::exception& e) {
    errors.emplace_back(e.what());
    return std::nullopt;
  }
}

json::object subscription_status(const SyncSides& sides, Connection& tgt) {
  json::object o;
  auto s = tgt.exec(
      "SELECT s.subenabled, st.pid IS NOT NULL, st.latest_end_time::text, "
      " COALESCE(ss.apply_error_count, 0), COALESCE(ss.sync_error_count, 0) "
      "FROM pg_subscription s LEFT JOIN pg_stat_subscription st ON st.subid = s.oid AND "
      " st.relid IS NULL LEFT JOIN pg_stat_subscription_stats ss ON ss.subid = s.oid "
      "WHERE s.subname = $1",
      {sides.subscription});
  o["exists"] = s.rows() > 0;
  if (s.rows() == 0) return o;
  o["enabled"] = s.get(0, 0) == "t";
  o["worker_running"] = s.get(0, 1) == "t";
  if (!s.is_null(0, 2)) o["latest_end_time"] = std::string(s.get(0, 2));
  o["apply_error_count"] = std::stoll(std::string(s.get(0, 3)));
  o["sync_error_count"] = std::stoll(std::string(s.get(0, 4)));
  json::array tables;
  auto r = tgt.exec(
      "SELECT n.nspname || '.' || c.relname, sr.srsubstate FROM pg_subscription s JOIN "
      "pg_subscription_rel sr ON sr.srsubid = s.oid JOIN pg_class c ON c.oid = sr.srrelid JOIN "
      "pg_namespace n ON n.oid = c.relnamespace WHERE s.subname = $1 ORDER BY 1",
      {sides.subscription});
  int ready = 0;
  for (int i = 0; i < r.rows(); ++i) {
    const auto st = r.get(i, 1);
    ready += st == "r";
    tables.push_back(json::object{{"table", std::string(r.get(i, 0))},
                                  {"state", st == "r"   ? "ready"
                                            : st == "d" ? "copying"
                                            : st == "i" ? "init"
                                            : st == "s" ? "synced"
                                                        : "copied"}});
  }
  o["tables"] = std::move(tables);
  o["tables_ready"] = ready;
  o["tables_total"] = r.rows();
  return o;
}

json::object slot_status(const SyncSides& sides, Connection& src) {
  json::object o;
  auto r = src.exec(
      "SELECT active, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint, "
      "confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
      {sides.subscription});
  o["exists"] = r.rows() > 0;
  if (r.rows() > 0) {
    o["active"] = r.get(0, 0) == "t";
    o["retained_wal_bytes"] = r.is_null(0, 1) ? 0 : std::stoll(std::string(r.get(0, 1)));
    o["confirmed_flush_lsn"] = std::string(r.get(0, 2));
  }
  auto p = src.exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {sides.publication});
  o["publication_exists"] = p.rows() > 0;
  json::array orphans;
  auto orph = src.exec(
      "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgshift\\_%' AND NOT "
      "active AND slot_name <> $1",
      {sides.subscription});
  for (int i = 0; i < orph.rows(); ++i) orphans.emplace_back(std::string(orph.get(i, 0)));
  o["inactive_pgshift_slots"] = std::move(orphans);
  return o;
}

// Lag by marker: the source's clock now minus the origin time of the newest marker the
// target has applied (both on the source's clock, so no clock skew).
json::object lag_status(const SyncSides& sides, Connection* src, Connection* tgt) {
  json::object o;
  const std::string q =
      "SELECT seq, origin_time::text FROM pgshift.heartbeat WHERE route = $1 AND origin = "
      "'source'";
  try {
    if (!src || !tgt) return o;
    auto s = src->exec(q, {sides.route->name});
    auto t = tgt->exec(q, {sides.route->name});
    if (s.rows() == 0) {
      o["note"] = "no marker on the source: is a pgshift sidecar with sync.mode logical running?";
      return o;
    }
    o["source_seq"] = std::stoll(std::string(s.get(0, 0)));
    if (t.rows() == 0) {
      o["note"] = "no marker applied on the target yet";
      return o;
    }
    o["target_seq"] = std::stoll(std::string(t.get(0, 0)));
    auto lag = src->exec("SELECT (extract(epoch FROM now() - $1::timestamptz) * 1000)::bigint",
                         {std::string(t.get(0, 1))});
    o["lag_ms"] = std::stoll(std::string(lag.get(0, 0)));
  } catch (const pgclient::Error& e) {
    o["note"] = std::string("no heartbeat table: ") + e.what();
  }
  return o;
}

void print_status(const json::object& st, std::ostream& out) {
  out << "route " << st.at("route").as_string().c_str() << "\n";
  for (const auto& e : st.at("errors").as_array()) out << "  error: " << e.as_string() << "\n";
  if (auto* sub = st.if_contains("subscription")) {
    const auto& o = sub->as_object();
    if (!o.at("exists").as_bool()) {
      out << "  subscription: none (pgshift sync start)\n";
    } else {
      out << "  subscription: " << (o.at("enabled").as_bool() ? "enabled" : "disabled")
          << ", worker " << (o.at("worker_running").as_bool() ? "running" : "NOT running")
          << ", apply errors " << o.at("apply_error_count").as_int64() << ", table sync errors "
          << o.at("sync_error_count").as_int64() << " (details: the target's server log)\n";
      out << "  tables ready: " << o.at("tables_ready").as_int64() << "/"
          << o.at("tables_total").as_int64() << "\n";
      for (const auto& t : o.at("tables").as_array()) {
        out << "    " << t.at("table").as_string().c_str() << ": "
            << t.at("state").as_string().c_str() << "\n";
      }
    }
  }
  if (auto* slot = st.if_contains("source")) {
    const auto& o = slot->as_object();
    out << "  publication: " << (o.at("publication_exists").as_bool() ? "exists" : "none") << "\n";
    if (o.at("exists").as_bool()) {
      out << "  slot: " << (o.at("active").as_bool() ? "active" : "inactive") << ", retains "
          << format_bytes(static_cast<double>(o.at("retained_wal_bytes").as_int64()))
          << " of WAL\n";
    } else {
      out << "  slot: none\n";
    }
    for (const auto& s : o.at("inactive_pgshift_slots").as_array()) {
      out << "  warning: inactive slot " << s.as_string().c_str()
          << " holds WAL on the source (orphaned? drop it with pg_drop_replication_slot)\n";
    }
  }
  if (auto* lag = st.if_contains("lag")) {
    const auto& o = lag->as_object();
    if (auto* ms = o.if_contains("lag_ms")) {
      out << "  lag: " << ms->as_int64() << " ms (marker " << o.at("target_seq").as_int64()
          << " of " << o.at("source_seq").as_int64() << " applied)\n";
    }
    if (auto* note = o.if_contains("note")) out << "  lag: " << note->as_string().c_str() << "\n";
  }
}

}  // namespace

int sync_status(const SyncSides& sides, bool as_json, std::ostream& out) {
  json::object st;
  json::array errors;
  st["route"] = sides.route->name;
  auto src = try_connect(sides.source, errors);
  auto tgt = try_connect(sides.target, errors);
  try {
    if (tgt) st["subscription"] = subscription_status(sides, *tgt);
    if (src) st["source"] = slot_status(sides, *src);
    st["lag"] = lag_status(sides, src ? &*src : nullptr, tgt ? &*tgt : nullptr);
  } catch (const std::exception& e) {
    errors.emplace_back(e.what());
  }
  const bool ok = errors.empty();
  st["errors"] = std::move(errors);
  if (as_json) {
    out << json::serialize(st) << "\n";
  } else {
    print_status(st, out);
  }
  return ok ? 0 : 1;
}

int sync_stop(const SyncSides& sides, std::ostream& out) {
  int failures = 0;
  try {
    Connection tgt = Connection::connect(sides.target);
    auto r = tgt.exec("SELECT 1 FROM pg_subscription WHERE subname = $1", {sides.subscription});
    if (r.rows() > 0) {
      try {
        tgt.exec("DROP SUBSCRIPTION " + quote_ident(sides.subscription));
        out << "dropped subscription " << sides.subscription << " (and its slot on the source)\n";
      } catch (const pgclient::Error& e) {
        ++failures;
        out << "could not drop subscription " << sides.subscription << ": " << e.what()
            << "\n  fix: if the source is gone for good: ALTER SUBSCRIPTION " << sides.subscription
            << " DISABLE; ALTER SUBSCRIPTION " << sides.subscription
            << " SET (slot_name = NONE); DROP SUBSCRIPTION " << sides.subscription
            << "; then drop slot " << sides.subscription << " on the source\n";
      }
    } else {
      out << "no subscription " << sides.subscription << " on the target\n";
    }
    if (tgt.exec("SELECT to_regclass('pgshift.heartbeat') IS NOT NULL").get(0, 0) == "t") {
      tgt.exec("DELETE FROM pgshift.heartbeat WHERE route = $1", {sides.route->name});
    }
  } catch (const std::exception& e) {
    ++failures;
    out << "target: " << e.what() << "\n";
  }
  if (failures > 0) {
    out << "the publication and slot on the source are kept until the subscription is gone\n";
    return 1;
  }
  try {
    Connection src = Connection::connect(sides.source);
    src.exec("DROP PUBLICATION IF EXISTS " + quote_ident(sides.publication));
    out << "dropped publication " << sides.publication << " (if it existed)\n";
    // A slot left behind (a crash between creating the slot and the subscription, or a
    // subscription dropped with slot_name = NONE). Its walsender may take a moment to exit.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      auto s = src.exec("SELECT active FROM pg_replication_slots WHERE slot_name = $1",
                        {sides.subscription});
      if (s.rows() == 0) break;
      if (s.get(0, 0) == "f") {
        src.exec("SELECT pg_drop_replication_slot($1)", {sides.subscription});
        out << "dropped leftover slot " << sides.subscription << " on the source\n";
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ++failures;
        out << "slot " << sides.subscription << " on the source is still in use; drop it with "
            << "SELECT pg_drop_replication_slot(" << quote_literal(sides.subscription) << ")\n";
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  } catch (const std::exception& e) {
    ++failures;
    out << "source: " << e.what() << "\n";
  }
  if (failures == 0) out << "sync of route " << sides.route->name << " stopped\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace pgshift::migrate
