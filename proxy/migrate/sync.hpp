#pragma once
// `pgshift sync check|start|status|stop ROUTE`: logical replication from a route's source
// to its target (DESIGN.md §5). Object names come from names.hpp.
//
// Each command connects to both sides with the route's fixed credentials (pgclient,
// blocking: CLI only), prints to `out` and returns the process exit code:
//   0 success, 1 blockers found / the operation failed (nothing half-done is left), 2 usage.
#include <iosfwd>

#include "proxy/migrate/sync_common.hpp"

namespace pgshift::migrate {

// Preflight: one line per finding with its fix; 1 when any finding is a blocker.
int sync_check(const SyncSides& sides, std::ostream& out);

// Findings of the preflight, for callers that decide themselves (start refuses on blockers).
std::vector<Finding> run_checks(const SyncSides& sides, bool copy_schema);

// Creates (or adopts) the publication on the source and the subscription on the target,
// optionally copying the schema first, then shows the initial copy until every table is
// ready. A failure drops what this run created.
int sync_start(const SyncSides& sides, bool copy_schema, std::ostream& out);

// Per-table state, apply errors, the slot's retained WAL, lag by marker. --json: one object.
int sync_status(const SyncSides& sides, bool json, std::ostream& out);

// Drops the subscription (which drops its slot on the source), then the publication, and
// any inactive slot of the route left behind. 1 if something could not be dropped.
int sync_stop(const SyncSides& sides, std::ostream& out);

}  // namespace pgshift::migrate
