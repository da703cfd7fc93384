#pragma once
// `pgshift verify ROUTE`: is the target equal to the source, table by table?
//
// Per table, both sides in parallel (one connection and thread per side), each side in one
// REPEATABLE READ snapshot: rows are put in K buckets by a hash of their key's text
// (abs(hashtext(key::text)) % K, K = ceil(rows / chunk_rows)); per bucket the server returns
// count(*) and the sum of a 64-bit slice of md5(row text), the row text built from the
// columns in the SOURCE's order by name. Only these sums cross the network. The key is the
// primary key, or the whole row for tables with REPLICA IDENTITY FULL and no key.
//
// While sync runs the target may lag: the target's snapshot is taken only after it has
// applied a lag marker written after the source's snapshot, and buckets that differ are
// compared again (bounded retries) before they are drilled down to the differing keys
// (missing on the target, extra on the target, changed; up to max_diffs per table).
// Sessions use TimeZone=UTC, DateStyle=ISO and extra_float_digits=1 on both sides so that
// equal values have equal text.
//
// Blocking; CLI only. Exit code 0 only when every table is equal.
#include <iosfwd>
#include <string>
#include <vector>

#include "proxy/migrate/sync_common.hpp"

namespace pgshift::migrate {

struct VerifyOptions {
  std::vector<std::string> tables;  // empty: the route's tables (sync.tables or all)
  long chunk_rows = 10000;          // rows per bucket (N)
  long max_diffs = 20;              // differing keys printed per table
  int retries = 3;                  // re-comparisons of differing buckets
  bool json = false;
};

int verify(const SyncSides& sides, const VerifyOptions& options, std::ostream& out);

}  // namespace pgshift::migrate
