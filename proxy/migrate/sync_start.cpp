// `pgshift sync start ROUTE [--copy-schema]`.
#include <chrono>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "proxy/migrate/schema_copy.hpp"
#include "proxy/migrate/schema_diff.hpp"
#include "proxy/migrate/sync.hpp"

namespace pgshift::migrate {

namespace {

using pgclient::Connection;
using pgclient::quote_ident;
using pgclient::quote_literal;

struct TableProgress {
  double est_rows = 0, est_bytes = 0;  // from the source's statistics
  double rows = 0, bytes = 0;          // copied so far (pg_stat_progress_copy on the target)
  std::string state;                   // pg_subscription_rel.srsubstate
};

std::string state_name(std::string_view s) {
  if (s == "i") return "init";
  if (s == "d") return "copying";
  if (s == "f") return "copied";
  if (s == "s") return "synced";
  if (s == "r") return "ready";
  return std::string(s);
}

// Creates what is missing, remembering what it created so a failure can drop it again.
struct Starter {
  const SyncSides& sides;
  std::ostream& out;
  Connection& src;
  Connection& tgt;
  bool created_pub = false, created_sub = false, copied_schema = false;
  std::vector<TableRef> tables;

  void publication() {
    auto r = src.exec("SELECT 1 FROM pg_publication WHERE pubname = $1", {sides.publication});
    if (r.rows() > 0) {
      auto listed = src.exec(
          "SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND "
          "schemaname || '.' || tablename <> 'pgshift.heartbeat'",
          {sides.publication});
      out << "publication " << sides.publication << " exists on the source: adopted ("
          << listed.get(0, 0) << " table(s))\n";
      return;
    }
    std::string list;
    for (const auto& t : tables) list += t.qualified() + ", ";
    list += std::string(kHeartbeatTable);
    src.exec("CREATE PUBLICATION " + quote_ident(sides.publication) + " FOR TABLE " + list +
             " WITH (publish_via_partition_root = true)");
    created_pub = true;
    out << "created publication " << sides.publication << " on the source (" << tables.size()
        << " table(s) + " << kHeartbeatTable << ")\n";
  }

  void subscription() {
    auto r = tgt.exec(
        "SELECT array_to_string(subpublications, ',') FROM pg_subscription WHERE subname = $1 "
        "AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        {sides.subscription});
    if (r.rows() > 0) {
      if (r.get(0, 0) != sides.publication) {
        throw std::runtime_error(
            "subscription " + sides.subscription + " exists on the target with publication(s) " +
            std::string(r.get(0, 0)) + ", not " + sides.publication +
            "; drop it (DROP "
            "SUBSCRIPTION " +
            sides.subscription + ") or run pgshift sync stop " + sides.route->name);
      }
      out << "subscription " << sides.subscription << " exists on the target: adopted\n";
      return;
    }
    tgt.exec("CREATE SUBSCRIPTION " + quote_ident(sides.subscription) + " CONNECTION " +
             quote_literal(pgclient::to_conninfo_string(sides.publisher)) + " PUBLICATION " +
             quote_ident(sides.publication) + " WITH (copy_data = true)");
    created_sub = true;
    out << "created subscription " << sides.subscription << " on the target (copy_data = true, "
        << "slot " << sides.subscription << " on the source)\n";
  }

  void rollback() {
    if (created_sub) {
      try {
        tgt.exec("DROP SUBSCRIPTION IF EXISTS " + quote_ident(sides.subscription));
        out << "rolled back: dropped subscription " << sides.subscription << "\n";
      } catch (const std::exception& e) {
        out << "could not drop subscription " << sides.subscription << ": " << e.what()
            << " -- run pgshift sync stop " << sides.route->name << "\n";
      }
    }
    if (created_pub) {
      try {
        src.exec("DROP PUBLICATION IF EXISTS " + quote_ident(sides.publication));
        out << "rolled back: dropped publication " << sides.publication << "\n";
      } catch (const std::exception& e) {
        out << "could not drop publication " << sides.publication << ": " << e.what() << "\n";
      }
    }
    if (copied_schema) {
      for (const auto& t : tables) {
        try {
          tgt.exec("DROP TABLE IF EXISTS " + t.qualified() + " CASCADE");
        } catch (const std::exception&) {
        }
      }
      out << "rolled back: dropped the " << tables.size() << " table(s) copied to the target\n";
    }
  }
};

std::map<std::string, TableProgress> estimates(Connection& src,
                                               const std::vector<TableRef>& tables) {
  std::map<std::string, TableProgress> out;
  for (const auto& t : tables) {
    auto r = src.exec(
        "SELECT GREATEST(c.reltuples, COALESCE(s.n_live_tup, 0), 0), pg_table_size(c.oid) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN "
        "pg_stat_user_tables s ON s.relid = c.oid WHERE n.nspname = $1 AND c.relname = $2",
        {t.schema, t.name});
    TableProgress p;
    if (r.rows() > 0) {
      p.est_rows = std::stod(std::string(r.get(0, 0)));
      p.est_bytes = std::stod(std::string(r.get(0, 1)));
    }
    out[t.display()] = p;
  }
  out["pgshift.heartbeat"] = TableProgress{};
  return out;
}

void print_progress(std::ostream& out, const std::map<std::string, TableProgress>& tables,
                    double elapsed_s, bool tty) {
  double rows = 0, est = 0, bytes = 0;
  int ready = 0;
  for (const auto& [name, p] : tables) {
    const bool done = p.state == "r" || p.state == "s" || p.state == "f";
    rows += done ? std::max(p.rows, p.est_rows) : p.rows;
    est += std::max(p.est_rows, p.rows);
    bytes += p.bytes;
    if (p.state == "r") ++ready;
  }
  const double frac = est > 0 ? std::min(1.0, rows / est) : (ready == int(tables.size()) ? 1 : 0);
  const double rate = elapsed_s > 0 ? rows / elapsed_s : 0;
  const double eta = rate > 0 ? (est - rows) / rate : -1;
  char head[160];
  std::snprintf(head, sizeof head, "%3.0f%% %d/%zu tables ready, %.0f/%.0f rows, %s, %.0f rows/s",
                frac * 100, ready, tables.size(), rows, est, format_bytes(bytes).c_str(), rate);
  if (tty) {
    const int width = 30, filled = static_cast<int>(frac * width);
    out << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << head
        << " ETA " << format_duration(eta) << "   " << std::flush;
  } else {
    out << "copy: " << head << ", ETA " << format_duration(eta) << "\n" << std::flush;
  }
}

// Polls pg_subscription_rel until every table is ready. Prints per-table state changes.
void wait_ready(const SyncSides& sides, Connection& tgt,
                std::map<std::string, TableProgress> tables, std::ostream& out) {
  const bool tty = stdout_is_tty() && &out == &std::cout;
  const auto start = std::chrono::steady_clock::now();
  auto last_line = start - std::chrono::hours(1);
  std::string last_errors = "0";
  for (;;) {
    auto r = tgt.exec(
        "SELECT n.nspname || '.' || c.relname, sr.srsubstate, COALESCE(p.tuples_processed, 0), "
        " COALESCE(p.bytes_processed, 0) FROM pg_subscription s JOIN pg_subscription_rel sr ON "
        " sr.srsubid = s.oid JOIN pg_class c ON c.oid = sr.srrelid JOIN pg_namespace n ON "
        " n.oid = c.relnamespace LEFT JOIN pg_stat_progress_copy p ON p.relid = sr.srrelid "
        "WHERE s.subname = $1",
        {sides.subscription});
    bool all_ready = r.rows() > 0;
    for (int i = 0; i < r.rows(); ++i) {
      auto& p = tables[std::string(r.get(i, 0))];
      std::string state(r.get(i, 1));
      if (state != p.state && !tty) {
        out << "table " << r.get(i, 0) << ": " << state_name(state) << "\n";
      }
      p.state = state;
      if (state == "d") {
        p.rows = std::stod(std::string(r.get(i, 2)));
        p.bytes = std::stod(std::string(r.get(i, 3)));
      }
      if (state != "r") all_ready = false;
    }
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - start).count();
    if (tty || now - last_line >= std::chrono::seconds(5) || all_ready) {
      print_progress(out, tables, elapsed, tty);
      last_line = now;
    }
    auto e = tgt.exec(
        "SELECT (st.apply_error_count + st.sync_error_count)::text FROM "
        "pg_stat_subscription_stats st WHERE st.subname = $1",
        {sides.subscription});
    if (e.rows() > 0 && e.get(0, 0) != last_errors) {
      last_errors = std::string(e.get(0, 0));
      out << (tty ? "\n" : "") << "the subscription reported errors (" << last_errors
          << " so far); the reason is in the target's server log; pgshift sync status "
          << sides.route->name << " shows the counts\n";
    }
    if (all_ready) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 500));
  }
  if (tty) out << "\n";
}

}  // namespace

int sync_start(const SyncSides& sides, bool copy_schema, std::ostream& out) {
  auto findings = run_checks(sides, copy_schema);
  int blockers = 0;
  for (const auto& f : findings) {
    if (f.severity == Severity::blocker || f.severity == Severity::warning) print_finding(out, f);
    if (f.severity == Severity::blocker) ++blockers;
  }
  if (blockers > 0) {
    out << "not started: " << blockers << " blocker(s) (pgshift sync check " << sides.route->name
        << " lists every finding)\n";
    return 1;
  }
  Connection src = Connection::connect(sides.source);
  Connection tgt = Connection::connect(sides.target);
  Starter s{sides, out, src, tgt, false, false, false, {}};
  s.tables = route_tables(src, *sides.route);
  std::optional<SchemaCopy> schema;
  try {
    if (copy_schema) {
      auto d = diff_schema(src, tgt, s.tables);
      if (d.tables_on_target == 0) {
        out << "copying the schema of " << s.tables.size() << " table(s) (pre-data and primary "
            << "keys now, other indexes and constraints after the initial copy)\n";
        schema.emplace(sides, s.tables);
        s.copied_schema = true;
        schema->before_copy();
      } else {
        out << "--copy-schema: the tables exist on the target already; not copied\n";
      }
    }
    src.exec(std::string(kHeartbeatDdl));
    tgt.exec(std::string(kHeartbeatDdl));
    s.publication();
    s.subscription();
  } catch (const std::exception& e) {
    out << "sync start failed: " << e.what() << "\n";
    s.rollback();
    return 1;
  }
  try {
    wait_ready(sides, tgt, estimates(src, s.tables), out);
    if (schema) {
      out << "initial copy done; creating indexes and constraints on the target\n";
      schema->after_copy();
    }
  } catch (const std::exception& e) {
    out << "sync is running but waiting for it failed: " << e.what() << "\n(pgshift sync status "
        << sides.route->name << " shows progress; pgshift sync "
        << "stop " << sides.route->name << " undoes it)\n";
    return 1;
  }
  out << "every table is ready; changes on the source now stream to the target\n";
  return 0;
}

}  // namespace pgshift::migrate
