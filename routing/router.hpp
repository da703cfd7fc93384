#pragma once
// The routing decision for one statement or the first statement of a transaction: source
// or target, and why. Pure: state, health and the read-your-writes answer come in.
//
// Inside an explicit transaction the router is not asked: the session keeps the server of
// the transaction's first statement until ReadyForQuery 'I', and a BEGIN READ ONLY block on
// the non-authoritative side is protected by the server itself (it refuses writes with
// SQLSTATE 25006).
//
// Order of the rules (first match wins; numbered as in docs/routing.md):
//   2. route without a target: source.
//   3. target_only phase: target.
//   4. not a read (anything but read_only / transaction_begin_read_only): authoritative.
//   5. session pinned to its authoritative server (SET, temp tables, ...): authoritative,
//      because the session state that reads may depend on lives there.
//   6. cutover in progress: authoritative (the proxy holds new transactions anyway).
//   7. the split says the authoritative side: there.
//   8. the key wrote recently (read your writes): authoritative.
//   9. the non-authoritative side is unhealthy: authoritative (counted as a fallback).
//  9b. sync.mode logical and the target's lag marker is at or past read_split.max_lag_ms
//      (routing/sync_position.hpp): authoritative (counted as a fallback).
//  10. otherwise the non-authoritative side.
#include <cstdint>
#include <string_view>

#include "routing/classifier.hpp"
#include "routing/migration_state.hpp"
#include "routing/read_your_writes.hpp"
#include "routing/side.hpp"

namespace pgshift::routing {

enum class Reason : std::uint8_t {
  no_target,                  // rule 2
  target_only,                // rule 3
  authoritative_write,        // rule 4: write or ddl
  authoritative_statement,    // rule 4: session state, transaction control, other
  empty_query,                // rule 4: nothing to run; the authoritative side answers
  session_pinned,             // rule 5
  cutover_in_progress,        // rule 6
  split_source,               // rule 7/10: the split chose the source
  split_target,               // rule 7/10: the split chose the target
  ryw_hold,                   // rule 8
  target_unhealthy_fallback,  // rule 9 (target not healthy)
  source_unhealthy_fallback,  // rule 9 (source not healthy, target_primary phase)
  target_lagging,             // rule 9b (logical sync: the target lags past max_lag_ms)
};

std::string_view to_string(Reason r);

struct RouteDecision {
  Side side = Side::source;
  Reason reason = Reason::authoritative_write;

  bool operator==(const RouteDecision&) const = default;
};

struct RouterInput {
  const MigrationState* state = nullptr;  // required
  bool has_target = true;                 // the route configures a target upstream
  bool target_healthy = true;
  bool source_healthy = true;
  bool target_lagging = false;  // SyncPosition::lagging(); false without logical sync
  StatementClass statement = StatementClass::write;
  bool session_pinned = false;
  std::string_view key;           // the resolved routing key
  ReadYourWrites* ryw = nullptr;  // optional; consulted only when it could matter
  std::int64_t now_ms = 0;
};

RouteDecision decide(const RouterInput& in);

}  // namespace pgshift::routing
