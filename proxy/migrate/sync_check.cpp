// `pgshift sync check ROUTE`: preflight of both sides for logical replication, or for
// mirrored writes when the route's sync.mode is mirror (mirror_check.hpp). Each check adds
// Findings; nothing is changed except the reachability probe of the logical mode (a
// disabled subscription without a slot, dropped again at once).
#include <iostream>
#include <optional>

#include "proxy/migrate/mirror_check.hpp"
#include "proxy/migrate/schema_diff.hpp"
#include "proxy/migrate/sync.hpp"

namespace pgshift::migrate {

namespace {

using pgclient::Connection;
using pgclient::quote_ident;
using pgclient::quote_literal;

constexpr const char* kWalLevelFix =
    "set wal_level = logical and restart the source (containers: command: postgres -c "
    "wal_level=logical; RDS: rds.logical_replication = 1 in the DB parameter group, then "
    "reboot; Neon: Project settings > Logical replication > Enable)";

struct Checker {
  const SyncSides& sides;
  std::vector<Finding> findings;

  void add(Severity s, std::string side, std::string text, std::string fix = {}) {
    findings.push_back({s, std::move(side), std::move(text), std::move(fix)});
  }

  void source_settings(Connection& src) {
    auto wal = std::string(src.exec("SHOW wal_level").get(0, 0));
    if (wal != "logical") {
      add(Severity::blocker, "source",
          "wal_level is '" + wal + "', logical replication needs 'logical'", kWalLevelFix);
    } else {
      add(Severity::ok, "source", "wal_level is logical");
    }
    auto r = src.exec(
        "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM "
        "pg_replication_slots), current_setting('max_wal_senders')::int - (SELECT count(*) "
        "FROM pg_stat_activity WHERE backend_type = 'walsender'), EXISTS (SELECT 1 FROM "
        "pg_replication_slots WHERE slot_name = $1)",
        {sides.subscription});
    const int free_slots = std::stoi(std::string(r.get(0, 0)));
    const int free_senders = std::stoi(std::string(r.get(0, 1)));
    const bool have_slot = r.get(0, 2) == "t";
    // The subscription needs one slot and one sender for good, plus one of each per table
    // copied in parallel during the initial copy (max_sync_workers_per_subscription, 2).
    for (auto [what, n] : {std::pair{"max_replication_slots", free_slots},
                           std::pair{"max_wal_senders", free_senders}}) {
      std::string text = std::to_string(n) + " free of " + what;
      if (n < 1 && !have_slot) {
        add(Severity::blocker, "source", text + "; the subscription needs 1",
            std::string("raise ") + what + " on the source (restart) or drop unused slots");
      } else if (n < 3) {
        add(Severity::warning, "source", text + "; the initial copy uses up to 2 more",
            std::string("raise ") + what + " to copy tables in parallel");
      } else {
        add(Severity::ok, "source", text);
      }
    }
  }

  // Role attributes and memberships that matter, in one row.
  static pgclient::Result role_row(Connection& c) {
    return c.exec(
        "SELECT r.rolsuper, r.rolreplication, "
        " EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_superuser' AND "
        "  pg_has_role(current_user, g.oid, 'member')), "
        " EXISTS (SELECT 1 FROM pg_roles g WHERE g.rolname = 'rds_replication' AND "
        "  pg_has_role(current_user, g.oid, 'member')), "
        " has_database_privilege(current_database(), 'CREATE'), current_user "
        "FROM pg_roles r WHERE r.rolname = current_user");
  }

  void source_privileges(Connection& src, const std::vector<TableRef>& tables) {
    auto r = role_row(src);
    const bool super = r.get(0, 0) == "t" || r.get(0, 2) == "t";
    const bool repl = r.get(0, 0) == "t" || r.get(0, 1) == "t" || r.get(0, 3) == "t";
    const std::string role(r.get(0, 5));
    if (!repl) {
      add(Severity::blocker, "source",
          "role " + role + " may not open replication connections (the subscription uses it)",
          "ALTER ROLE " + quote_ident(role) + " REPLICATION; (RDS: GRANT rds_replication TO " +
              quote_ident(role) + ";)");
    }
    if (r.get(0, 4) != "t" && !super) {
      add(Severity::blocker, "source",
          "role " + role + " may not create publications or the pgshift schema in this database",
          "GRANT CREATE ON DATABASE " + quote_ident(sides.source.dbname) + " TO " +
              quote_ident(role) + ";");
    }
    if (!super) {
      int not_owned = 0;
      for (const auto& t : tables) {
        auto o = src.exec(
            "SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 "
            "AND c.relname = $2",
            {t.schema, t.name});
        if (o.rows() > 0 && o.get(0, 0) != "t") {
          ++not_owned;
          add(Severity::blocker, "source",
              "role " + role + " does not own table " + t.display() +
                  " (a publication can only list tables its creator owns)",
              "ALTER TABLE " + t.qualified() + " OWNER TO " + quote_ident(role) +
                  "; or use a superuser / rds_superuser");
        }
      }
      if (not_owned == 0) add(Severity::ok, "source", "role " + role + " owns the route's tables");
    } else {
      add(Severity::ok, "source", "role " + role + " may publish and replicate");
    }
    // A walsender connection from here: pg_hba.conf allows replication for the role (from
    // this host; the target's own path is probed separately).
    auto info = sides.source;
    info.replication = "database";
    try {
      Connection::connect(info);
      add(Severity::ok, "source", "replication connections are allowed for " + role);
    } catch (const pgclient::Error& e) {
      add(Severity::blocker, "source", std::string("replication connection refused: ") + e.what(),
          "allow it in the source's pg_hba.conf (a line for database 'replication' or the "
          "database name with replication=database) and give the role REPLICATION");
    }
  }

  // A blocker for logical replication (UPDATE/DELETE cannot be published); in mirror mode
  // only verify needs the key.
  void replica_identity(Connection& src, const std::vector<TableRef>& tables, Severity severity) {
    int bad = 0;
    for (const auto& t : tables) {
      auto r = src.exec(
          "SELECT c.relreplident, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid "
          "AND i.indisprimary) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
          "WHERE n.nspname = $1 AND c.relname = $2",
          {t.schema, t.name});
      if (r.rows() == 0) continue;
      const auto ident = r.get(0, 0);
      const bool pk = r.get(0, 1) == "t";
      if ((ident == "d" && !pk) || ident == "n") {
        ++bad;
        add(severity, "source",
            "table " + t.display() + " has no primary key or replica identity: " +
                (severity == Severity::blocker
                     ? "its UPDATEs and DELETEs cannot be replicated (and verify needs a key)"
                     : "pgshift verify needs a key to compare it"),
            "ALTER TABLE " + t.qualified() + " ADD PRIMARY KEY (...); or ALTER TABLE " +
                t.qualified() + " REPLICA IDENTITY FULL;");
      }
    }
    if (bad == 0) add(Severity::ok, "source", "every table has a primary key or replica identity");
  }

  void not_carried(Connection& src) {
    auto r = src.exec(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "  WHERE c.relkind = 'S' AND n.nspname <> 'pgshift'),"
        " (SELECT string_agg(n.nspname || '.' || c.relname, ', ') FROM pg_class c JOIN "
        "  pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') AND "
        "  c.relpersistence = 'u'),"
        " (SELECT string_agg(n.nspname || '.' || c.relname, ', ') FROM pg_class c JOIN "
        "  pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'm'),"
        " (SELECT count(*) FROM pg_largeobject_metadata)");
    if (r.get(0, 0) != "0") {
      add(Severity::info, "source",
          std::string(r.get(0, 0)) +
              " sequence(s): not carried by logical replication; "
              "pgshift copies their values at cutover");
    }
    if (!r.is_null(0, 1)) {
      add(Severity::warning, "source",
          "unlogged table(s) not carried by logical replication: " + std::string(r.get(0, 1)),
          "copy them yourself or make them logged (ALTER TABLE ... SET LOGGED)");
    }
    if (!r.is_null(0, 2)) {
      add(Severity::info, "source", "materialized view(s) not carried: " + std::string(r.get(0, 2)),
          "REFRESH MATERIALIZED VIEW on the target before cutover");
    }
    if (r.get(0, 3) != "0") {
      add(Severity::warning, "source",
          std::string(r.get(0, 3)) + " large object(s) not carried by logical replication",
          "copy them yourself (pg_dump --large-objects) before cutover");
    }
    add(Severity::info, "both",
        "DDL is not carried by logical replication: apply schema changes to the target first, "
        "then to the source, while sync runs");
  }

  void orphaned_slots(Connection& src, Connection* tgt) {
    auto r = src.exec(
        "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'pgshift\\_%' AND NOT "
        "active");
    for (int i = 0; i < r.rows(); ++i) {
      std::string slot(r.get(i, 0));
      bool has_sub = false;
      if (tgt) {
        has_sub =
            tgt->exec("SELECT 1 FROM pg_subscription WHERE subslotname = $1", {slot}).rows() > 0;
      }
      if (!has_sub) {
        add(Severity::warning, "source",
            "replication slot " + slot +
                " is inactive and no subscription on the target uses "
                "it: it holds WAL on the source",
            "pgshift sync stop " + sides.route->name + ", or SELECT pg_drop_replication_slot(" +
                quote_literal(slot) + ") on the source");
      }
    }
  }

  bool target_privileges(Connection& tgt) {
    auto r = role_row(tgt);
    const std::string role(r.get(0, 5));
    if (r.get(0, 0) != "t" && r.get(0, 2) != "t") {
      add(Severity::blocker, "target",
          "role " + role +
              " may not create subscriptions (PostgreSQL 15 needs a superuser; "
              "RDS: rds_superuser; PostgreSQL 16+: pg_create_subscription)",
          "use the RDS master user, or GRANT rds_superuser TO " + quote_ident(role) +
              "; or ALTER ROLE " + quote_ident(role) + " SUPERUSER");
      return false;
    }
    add(Severity::ok, "target", "role " + role + " may create subscriptions");
    return true;
  }

  // The honest test that the target reaches the source: the target server itself connects
  // with the conninfo the subscription will use. A subscription created with connect = true
  // but no slot, disabled and slot_name = NONE, is dropped again without touching the source.
  void reachability(Connection& tgt) {
    auto sub = tgt.exec(
        "SELECT s.subenabled, st.pid IS NOT NULL FROM pg_subscription s LEFT JOIN "
        "pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL WHERE s.subname = $1 "
        "AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        {sides.subscription});
    const std::string where = sides.publisher.host + ":" + std::to_string(sides.publisher.port);
    if (sub.rows() > 0) {
      add(Severity::info, "target",
          "subscription " + sides.subscription + " exists already" +
              (sub.get(0, 1) == "t" ? " and its worker is connected to the source"
                                    : "; its worker is not running (see pgshift sync status)"));
      return;
    }
    try {
      // PostgreSQL warns that the publication does not exist yet: expected here.
      tgt.exec("SET client_min_messages = error");
      tgt.exec("CREATE SUBSCRIPTION " + quote_ident(sides.subscription) + " CONNECTION " +
               quote_literal(pgclient::to_conninfo_string(sides.publisher)) + " PUBLICATION " +
               quote_ident(sides.publication) +
               " WITH (connect = true, create_slot = false, enabled = false, copy_data = false, "
               "slot_name = NONE)");
      tgt.exec("DROP SUBSCRIPTION " + quote_ident(sides.subscription));
      tgt.exec("RESET client_min_messages");
      add(Severity::ok, "target", "the target server reaches the source at " + where);
    } catch (const pgclient::Error& e) {
      add(Severity::blocker, "target",
          "the target server cannot reach the source at " + where + " as " + sides.publisher.user +
              ": " + e.what(),
          "set routes[].sync.publisher_host / publisher_port to an address the target server "
          "can reach and allow replication from it in the source's pg_hba.conf; if the target "
          "(e.g. RDS) cannot reach the source at all (a laptop container), use sync.mode: mirror");
    }
  }

  // Before the subscription exists, rows already on the target would make the initial copy
  // fail on duplicate keys (and retry forever).
  void target_rows(Connection& tgt, const std::vector<TableRef>& tables) {
    if (tgt.exec("SELECT 1 FROM pg_subscription WHERE subname = $1", {sides.subscription}).rows() >
        0) {
      return;
    }
    for (const auto& t : tables) {
      if (tgt.exec("SELECT EXISTS (SELECT 1 FROM " + t.qualified() + ")").get(0, 0) == "t") {
        add(Severity::blocker, "target",
            "table " + t.display() +
                " already has rows on the target; the initial copy would "
                "fail on duplicate keys",
            "TRUNCATE " + t.qualified() + "; on the target (the initial copy fills it)");
      }
    }
  }

  void schema(Connection& src, Connection& tgt, const std::vector<TableRef>& tables,
              bool copy_schema) {
    auto d = diff_schema(src, tgt, tables);
    if (d.equal()) {
      add(Severity::ok, "both",
          "schemas of the " + std::to_string(tables.size()) + " table(s) are identical");
      target_rows(tgt, tables);
      return;
    }
    if (d.tables_on_target == 0) {
      add(copy_schema ? Severity::ok : Severity::blocker, "target",
          "none of the route's " + std::to_string(tables.size()) + " table(s) exist on the target",
          copy_schema ? "" : "pgshift sync start " + sides.route->name + " --copy-schema");
      return;
    }
    std::string text = "schemas differ (- only on source, + only on target):";
    constexpr std::size_t kMax = 40;
    std::size_t n = 0;
    for (const auto& l : d.only_source) {
      if (n++ < kMax) text += "\n    - " + l;
    }
    for (const auto& l : d.only_target) {
      if (n++ < kMax) text += "\n    + " + l;
    }
    if (n > kMax) text += "\n    ... " + std::to_string(n - kMax) + " more";
    add(Severity::blocker, "both", text,
        "make the target's schema match the source (or start from an empty target with "
        "--copy-schema)");
  }
};

}  // namespace

std::vector<Finding> run_checks(const SyncSides& sides, bool copy_schema) {
  Checker c{sides, {}};
  std::optional<Connection> src, tgt;
  try {
    src = Connection::connect(sides.source);
  } catch (const pgclient::Error& e) {
    c.add(Severity::blocker, "source", e.what(),
          "check routes[].source host, port, user and password");
  }
  try {
    tgt = Connection::connect(sides.target);
  } catch (const pgclient::Error& e) {
    c.add(Severity::blocker, "target", e.what(),
          "check routes[].target host, port, user and password");
  }
  std::vector<TableRef> tables;
  const bool mirror = sides.route->sync.mode == config::SyncMode::mirror;
  if (src) {
    tables = route_tables(*src, *sides.route);
    c.add(tables.empty() ? Severity::warning : Severity::ok, "source",
          std::to_string(tables.size()) + " table(s) to " + (mirror ? "mirror" : "replicate"),
          tables.empty() ? "create the tables, or list them in routes[].sync.tables" : "");
  }
  if (mirror) {
    // The proxy replays the writes itself: no WAL decoding, publication, replication role or
    // path from the target to the source. What matters is what a replay computes again.
    c.add(Severity::info, "both",
          "sync.mode is mirror: wal_level, publications, replication privileges and the "
          "target reaching the source are not needed");
    if (src) {
      c.replica_identity(*src, tables, Severity::warning);
      for (auto& f : mirror_findings(*src, tables)) c.findings.push_back(std::move(f));
    }
    if (src && tgt) c.schema(*src, *tgt, tables, copy_schema);
    return c.findings;
  }
  if (src) {
    c.source_settings(*src);
    c.source_privileges(*src, tables);
    c.replica_identity(*src, tables, Severity::blocker);
    c.not_carried(*src);
    c.orphaned_slots(*src, tgt ? &*tgt : nullptr);
  }
  if (tgt) {
    if (c.target_privileges(*tgt)) c.reachability(*tgt);
    if (src) c.schema(*src, *tgt, tables, copy_schema);
  }
  return c.findings;
}

int sync_check(const SyncSides& sides, std::ostream& out) {
  auto findings = run_checks(sides, false);
  int blockers = 0;
  for (const auto& f : findings) {
    print_finding(out, f);
    if (f.severity == Severity::blocker) ++blockers;
  }
  if (blockers > 0) {
    out << blockers << " blocker(s): fix them before pgshift sync start " << sides.route->name;
    if (sides.route->sync.mode != config::SyncMode::mirror) {
      out << " (or use sync.mode: mirror where logical replication is impossible)";
    }
    out << "\n";
    return 1;
  }
  out << "ready for pgshift sync start " << sides.route->name << "\n";
  return 0;
}

}  // namespace pgshift::migrate
