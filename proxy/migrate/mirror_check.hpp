#pragma once
// What the source's catalog says about replaying writes in sync.mode: mirror. A table whose
// INSERTs take serial / identity / volatile defaults, or whose writes fire user triggers,
// may come out different on the target when pgshift replays the same statements there
// (docs/sync.md, "Mirror mode: what cannot be replayed"). Used by `sync check` (findings)
// and by whatever feeds routing::classify_mirror_safety at mirror start (the schema hook).
//
// Blocking (pgclient): CLI commands and dedicated threads only.
#include <string>
#include <vector>

#include "proxy/migrate/sync_common.hpp"
#include "routing/mirror_safety.hpp"

namespace pgshift::migrate {

// One table's risks with the catalog's own words, for findings.
struct MirrorTableReport {
  TableRef table;
  routing::MirrorTableRisks risks;
  std::vector<std::string> default_texts;  // "id nextval('t_id_seq'::regclass)", same order
  std::vector<std::string> trigger_names;  // enabled, non-internal triggers
};

// Tables among `tables` with at least one risk, sorted by table. Reads pg_attribute,
// pg_attrdef (pg_get_expr, the functions the default depends on and their provolatile) and
// pg_trigger on `conn` (the source).
std::vector<MirrorTableReport> mirror_table_risks(pgclient::Connection& conn,
                                                  const std::vector<TableRef>& tables);

// The schema hook of routing::classify_mirror_safety built from those reports.
routing::MirrorSchema mirror_schema(const std::vector<MirrorTableReport>& reports);

// `sync check` in mirror mode: one finding per table at risk (or one ok line), plus what
// mirror mode never sees (writes that bypass pgshift) and when logical mode is the better
// choice.
std::vector<Finding> mirror_findings(pgclient::Connection& src,
                                     const std::vector<TableRef>& tables);

}  // namespace pgshift::migrate
