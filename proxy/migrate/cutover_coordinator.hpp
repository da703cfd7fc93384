#pragma once
// Cutover, rollback and finalize of one route with logical sync (docs/cutover.md): a named
// list of steps, each timed, logged and reported as it ends, read top to bottom like Vitess's
// SwitchTraffic:
//
//   preconditions -> hold -> drain -> fence -> catch_up -> sequences -> stop_stream
//     -> start_reverse_stream -> unfence_new_side -> commit
//
// A cutover moves the route from the source ("from" side) to the target ("to" side); a
// rollback runs the same steps the other way. Before the commit point any failure undoes the
// steps done so far in reverse order (the stream is re-created at the current position, the
// old side un-fenced, the fleet released) and the outcome says what state both databases are
// in; nothing is ever committed on a timeout. The commit point is Fleet::commit(): once it
// returns ok the operation is complete and durable.
//
// Thread-safety: run_switch() blocks its caller (a coordinator thread or the CLI), never an
// I/O thread; one operation per route at a time (the Fleet's hold enforces it).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "proxy/control/fleet.hpp"
#include "proxy/migrate/cutover_db.hpp"
#include "proxy/migrate/verify_record.hpp"
#include "proxy/pgclient/connection.hpp"
#include "proxy/runtime/mirror_sink.hpp"
#include "routing/migration_state.hpp"

namespace pgshift::migrate {

// recover: ends an operation that was interrupted (its coordinator died) in phase cutover,
// back where it started: the old side authoritative and unfenced, its stream running, the
// new side fenced, no reverse stream. Every step is idempotent; run it again if it fails.
// mirror_start / mirror_stop: sync.mode mirror (mirror_start.hpp).
enum class SwitchKind { cutover, rollback, finalize, recover, mirror_start, mirror_stop };
std::string_view to_string(SwitchKind k);

struct SwitchOptions {
  bool dry_run = false;      // preconditions only
  bool skip_verify = false;  // no clean verify recorded: go on anyway (audited)
  // The recorded `pgshift verify` runs of a route (verify_record.hpp), called on the
  // operation's thread; unset: none is recorded. The latest run must be clean and have
  // finished after the route's last state change (MigrationState::updated_at_ms) and its
  // last recorded sync start, unless skip_verify.
  std::function<VerifyRecord(const std::string& route)> verify_record;
  std::chrono::milliseconds max_lag{500};
  std::chrono::milliseconds drain_timeout{5000};      // open transactions, fence locks
  std::chrono::milliseconds catch_up_timeout{10000};  // marker after the fence
  std::int64_t sequence_gap = 1000;                   // routes[].cutover.sequence_gap
  std::string actor = "cli";                          // who asked (audit)
  // sync.mode mirror (docs/cutover.md, "Mirrored routes"): the sidecars' mirrors carry the
  // writes to the other side instead of a subscription. Unset for logical routes.
  struct Mirror {
    // The route's tables (sync.tables) as the given side has them: the ones fenced.
    std::function<std::vector<TableName>(pgclient::Connection&)> tables;
    // The coordinating sidecar's own mirror of the route, for the preconditions.
    std::function<proxy::MirrorDrain()> local;
  };
  std::optional<Mirror> mirror;
};

struct SwitchEndpoints {
  pgclient::ConnInfo source, target;  // how the coordinator reaches each side
  // How each side's subscription reaches the other side (libpq conninfo, password included):
  // the target's subscription connects to the source and vice versa.
  std::string source_as_seen_from_target, target_as_seen_from_source;
};

struct StepRecord {
  std::string name;    // "fence", "undo fence", ...
  std::string status;  // ok | failed | refused | skipped
  std::chrono::milliseconds duration{0};
  std::string detail;  // what it did, or why it failed
};

struct SwitchOutcome {
  SwitchKind kind = SwitchKind::cutover;
  std::string route;
  std::string result;     // completed | refused | aborted | dry_run
  std::string error;      // why not completed
  std::string databases;  // the state both databases are left in
  std::chrono::milliseconds total{0};
  std::chrono::milliseconds pause{0};  // hold to commit/abort: the longest any client waited
  std::uint64_t held_transactions = 0;
  std::vector<StepRecord> steps;
  bool ok() const { return result == "completed" || result == "dry_run"; }
  // One line: "cutover of route app completed in 812 ms (pause 240 ms, ...)".
  std::string summary() const;
};

using StepListener = std::function<void(const StepRecord&)>;

// Runs one operation. `current` is the route's state now (its phase decides whether the
// operation is allowed). `listener` (optional) is called as each step ends, on this thread.
SwitchOutcome run_switch(SwitchKind kind, const std::string& route,
                         const routing::MigrationState& current, const SwitchEndpoints& endpoints,
                         control::Fleet& fleet, const SwitchOptions& options,
                         const StepListener& listener = {});

// The route to phase `phase` through the fleet: hold (`req`: open transactions drained), then
// commit; a failed commit is aborted. The committed state, or std::runtime_error saying which
// of the two did not happen (the route is then unchanged).
routing::MigrationState commit_phase_through_fleet(control::Fleet& fleet,
                                                   const control::HoldRequest& req,
                                                   config::Phase phase);

}  // namespace pgshift::migrate
