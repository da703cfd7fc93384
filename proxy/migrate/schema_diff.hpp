#pragma once
// A readable comparison of the route's tables on two servers: tables, columns and types,
// constraints, indexes. Each object is one line of text; the diff is the set difference.
// Blocking (pgclient); CLI only.
#include <set>
#include <string>
#include <vector>

#include "proxy/migrate/sync_common.hpp"

namespace pgshift::migrate {

// "table public.t", "column public.t.a integer NOT NULL", "constraint public.t t_pkey:
// PRIMARY KEY (a)", "index public.t t_a_idx: CREATE INDEX ...". Tables missing on `conn`
// give no lines.
std::set<std::string> schema_lines(pgclient::Connection& conn, const std::vector<TableRef>& tables);

struct SchemaDiff {
  std::vector<std::string> only_source, only_target;
  int tables_on_target = 0;  // how many of the route's tables exist on the target
  bool equal() const { return only_source.empty() && only_target.empty(); }
};

SchemaDiff diff_schema(pgclient::Connection& source, pgclient::Connection& target,
                       const std::vector<TableRef>& tables);

}  // namespace pgshift::migrate
