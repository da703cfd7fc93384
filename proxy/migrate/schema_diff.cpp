#include "proxy/migrate/schema_diff.hpp"

#include <algorithm>

namespace pgshift::migrate {

namespace {

// A VALUES list of (schema, table) pairs for the route's tables.
std::string table_values(const std::vector<TableRef>& tables) {
  std::string v;
  for (const auto& t : tables) {
    v += (v.empty() ? "" : ",") + std::string("(") + pgclient::quote_literal(t.schema) + "," +
         pgclient::quote_literal(t.name) + ")";
  }
  return v;
}

}  // namespace

std::set<std::string> schema_lines(pgclient::Connection& conn,
                                   const std::vector<TableRef>& tables) {
  std::set<std::string> out;
  if (tables.empty()) return out;
  const std::string with =
      "WITH wanted(s, t) AS (VALUES " + table_values(tables) +
      "), rel AS (SELECT c.oid, n.nspname || '.' || c.relname AS tname FROM pg_class c "
      "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN wanted w ON w.s = n.nspname AND "
      "w.t = c.relname WHERE c.relkind IN ('r','p')) ";
  auto res = conn.exec(
      with +
      "SELECT 'table ' || tname FROM rel "
      "UNION ALL SELECT 'column ' || tname || '.' || a.attname || ' ' || "
      " format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' "
      " ELSE '' END FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid "
      " WHERE a.attnum > 0 AND NOT a.attisdropped "
      "UNION ALL SELECT 'constraint ' || tname || ' ' || co.conname || ': ' || "
      " pg_get_constraintdef(co.oid) FROM rel JOIN pg_constraint co ON co.conrelid = rel.oid "
      "UNION ALL SELECT 'index ' || tname || ' ' || ic.relname || ': ' || "
      " pg_get_indexdef(i.indexrelid) FROM rel JOIN pg_index i ON i.indrelid = rel.oid "
      " JOIN pg_class ic ON ic.oid = i.indexrelid");
  for (int i = 0; i < res.rows(); ++i) out.insert(std::string(res.get(i, 0)));
  return out;
}

SchemaDiff diff_schema(pgclient::Connection& source, pgclient::Connection& target,
                       const std::vector<TableRef>& tables) {
  auto a = schema_lines(source, tables);
  auto b = schema_lines(target, tables);
  SchemaDiff d;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(d.only_source));
  std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(d.only_target));
  d.tables_on_target = static_cast<int>(std::count_if(
      b.begin(), b.end(), [](const std::string& l) { return l.rfind("table ", 0) == 0; }));
  return d;
}

}  // namespace pgshift::migrate
