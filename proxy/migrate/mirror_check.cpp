// Catalog reads behind mirror_check.hpp: defaults and triggers that a replayed write would
// evaluate again on the target.
#include "proxy/migrate/mirror_check.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace pgshift::migrate {

namespace {

using routing::MirrorUnsafeReason;

// Per column with an identity or a (non-generated) default: the default's text, and
// whether it calls a function that is not IMMUTABLE. Built-in functions are pinned and have
// no pg_depend rows, so they are recognised by name (every overload of that name is
// non-immutable: now, random, clock_timestamp, nextval...) besides the text classifier;
// user and extension functions through pg_depend and their provolatile.
constexpr const char* kDefaultsSql =
    "SELECT n.nspname, c.relname, a.attname, a.attidentity, pg_get_expr(d.adbin, d.adrelid), "
    " EXISTS (SELECT 1 FROM pg_depend dep JOIN pg_proc p ON p.oid = dep.refobjid "
    "  WHERE dep.classid = 'pg_attrdef'::regclass AND dep.objid = d.oid "
    "  AND dep.refclassid = 'pg_proc'::regclass AND p.provolatile <> 'i') "
    " OR EXISTS (SELECT 1 FROM regexp_matches(pg_get_expr(d.adbin, d.adrelid), "
    "  '([a-z_][a-z0-9_]*)\\(', 'g') m JOIN pg_proc p ON p.proname = m[1] "
    "  GROUP BY p.proname HAVING bool_and(p.provolatile <> 'i')) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
    "WHERE (a.attidentity <> '' OR (d.oid IS NOT NULL AND a.attgenerated = '')) AND ";

// Triggers that fire for an ordinary session (the replay): enabled 'O'rigin or 'A'lways.
constexpr const char* kTriggersSql =
    "SELECT n.nspname, c.relname, t.tgname FROM pg_trigger t "
    "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE NOT t.tgisinternal AND t.tgenabled IN ('O', 'A') AND ";

// Which reason a default falls under, if any.
std::optional<MirrorUnsafeReason> default_reason(std::string_view identity, const std::string& expr,
                                                 bool non_immutable) {
  if (!identity.empty()) return MirrorUnsafeReason::identity_default;
  const auto text = routing::classify_mirror_safety("SELECT " + expr).reasons;
  if (text.contains(MirrorUnsafeReason::sequence)) return MirrorUnsafeReason::serial_default;
  if (non_immutable || !text.empty()) return MirrorUnsafeReason::volatile_default;
  return std::nullopt;
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string fix_text(const MirrorTableReport& r) {
  std::string fix;
  if (!r.default_texts.empty()) fix = "give these columns explicit values in every INSERT";
  if (r.risks.user_triggers) {
    fix += std::string(fix.empty() ? "" : " and ") +
           "keep the triggers deterministic (no now(), random(), sequences, NOTIFY)";
  }
  return fix +
         ", or use sync.mode: logical (it copies the rows the source wrote); pgshift verify "
         "finds any difference";
}

}  // namespace

std::vector<MirrorTableReport> mirror_table_risks(pgclient::Connection& conn,
                                                  const std::vector<TableRef>& tables) {
  const std::set<TableRef> wanted(tables.begin(), tables.end());
  std::map<TableRef, MirrorTableReport> by_table;
  auto defaults =
      conn.exec(std::string(kDefaultsSql) + user_table_condition() + " ORDER BY 1, 2, a.attnum");
  for (int i = 0; i < defaults.rows(); ++i) {
    TableRef t{std::string(defaults.get(i, 0)), std::string(defaults.get(i, 1))};
    if (!wanted.contains(t)) continue;
    const std::string column(defaults.get(i, 2));
    const std::string identity(defaults.get(i, 3));
    const std::string expr = defaults.is_null(i, 4) ? "" : std::string(defaults.get(i, 4));
    auto reason = default_reason(identity, expr, defaults.get(i, 5) == "t");
    if (!reason) continue;
    auto& r = by_table[t];
    r.table = t;
    r.risks.defaults.emplace_back(column, *reason);
    r.default_texts.push_back(column + " " +
                              (identity.empty() ? expr
                                                : std::string("GENERATED ") +
                                                      (identity == "a" ? "ALWAYS" : "BY DEFAULT") +
                                                      " AS IDENTITY"));
  }
  auto triggers =
      conn.exec(std::string(kTriggersSql) + user_table_condition() + " ORDER BY 1, 2, 3");
  for (int i = 0; i < triggers.rows(); ++i) {
    TableRef t{std::string(triggers.get(i, 0)), std::string(triggers.get(i, 1))};
    if (!wanted.contains(t)) continue;
    auto& r = by_table[t];
    r.table = t;
    r.risks.user_triggers = true;
    r.trigger_names.emplace_back(triggers.get(i, 2));
  }
  std::vector<MirrorTableReport> out;
  for (auto& [t, r] : by_table) out.push_back(std::move(r));
  return out;
}

routing::MirrorSchema mirror_schema(const std::vector<MirrorTableReport>& reports) {
  routing::MirrorSchema schema;
  for (const auto& r : reports) schema.add_table(r.table.schema, r.table.name, r.risks);
  return schema;
}

std::vector<Finding> mirror_findings(pgclient::Connection& src,
                                     const std::vector<TableRef>& tables) {
  std::vector<Finding> out;
  const auto reports = mirror_table_risks(src, tables);
  for (const auto& r : reports) {
    std::string text = "table " + r.table.display() + " cannot be mirrored faithfully:";
    routing::MirrorUnsafeSet reasons;
    for (const auto& [column, reason] : r.risks.defaults) reasons.add(reason);
    if (!r.default_texts.empty()) {
      text += " INSERTs that leave out a column take its default again on the target (" +
              join(r.default_texts) + ")";
    }
    if (r.risks.user_triggers) {
      reasons.add(MirrorUnsafeReason::trigger);
      text += std::string(r.default_texts.empty() ? "" : ";") +
              " its triggers run again on the target for every replayed write (" +
              join(r.trigger_names) + ")";
    }
    text += " [" + reasons.to_string() + "]";
    out.push_back({Severity::warning, "source", std::move(text), fix_text(r)});
  }
  if (reports.empty()) {
    out.push_back({Severity::ok, "source",
                   "no serial, identity or volatile default and no user trigger in the " +
                       std::to_string(tables.size()) + " table(s): their writes replay as sent",
                   ""});
  } else {
    out.push_back({Severity::info, "both",
                   "sync.mode: logical is preferred when these tables matter: it replicates the "
                   "rows the source produced (defaults, sequence values, trigger effects) instead "
                   "of running the statements again",
                   ""});
  }
  out.push_back({Severity::info, "source",
                 "mirror mode replays only writes that go through pgshift: writes that bypass it "
                 "(direct connections, cron jobs, other services) are not mirrored; pgshift verify "
                 "finds the rows they changed",
                 ""});
  return out;
}

}  // namespace pgshift::migrate
