#pragma once
// Starting and stopping the mirror of a route (sync.mode mirror; DESIGN.md §5, docs/sync.md
// "Mirror mode"). Start, read top to bottom:
//
//   preconditions -> record -> hold -> snapshot -> commit -> copy (per table) -> copied
//
// The fleet holds new transactions of the route and waits for open ones; in that quiet
// moment a REPEATABLE READ transaction on the source exports its snapshot, and the commit
// (phase sync) turns mirroring on in every sidecar as it releases the held transactions.
// Every transaction that commits after the commit point is mirrored (queued until the copy
// is done); everything before it is in the snapshot, copied table by table with COPY under
// SET TRANSACTION SNAPSHOT. pgshift.mirror_copies on the target says when the copy is done:
// the sidecars' replay starts then. Before the commit point any failure releases the fleet
// unchanged; after it, a failed copy turns mirroring off again (phase source_only) and
// empties the tables it copied into, so both databases are as they were.
//
// Stop: hold -> commit (phase source_only): no transaction is mirrored after it.
//
// Recover (mirror_recover.cpp): undoes a start whose coordinator died during the copy.
//
// Thread-safety: blocking; runs on an operation thread (cutover_runner.hpp), never on an
// I/O thread.
#include "proxy/migrate/cutover_coordinator.hpp"

namespace pgshift::migrate {

struct MirrorStartOptions {
  std::vector<std::string> tables;  // sync.tables; empty = every user table
  int copy_workers = 2;
  std::chrono::milliseconds drain_timeout{5000};
  std::string actor = "cli";
};

SwitchOutcome run_mirror_start(const std::string& route, const routing::MigrationState& current,
                               const SwitchEndpoints& endpoints, control::Fleet& fleet,
                               const MirrorStartOptions& options,
                               const StepListener& listener = {});

// Ends a mirror start whose coordinator died during the copy (phase sync, the copy recorded
// as pending in pgshift.mirror_copies, its heartbeat older than kMirrorHeartbeatStale):
//   preconditions -> mirror_off (phase source_only through the fleet) -> empty_target
//   (TRUNCATE the route's tables on the target: they were empty when the start began, and no
//   replay ran before the copy) -> forget_copy. Both databases end as before the start; run
//   pgshift sync start again. Refused while the copy's heartbeat is fresh.
inline constexpr std::chrono::milliseconds kMirrorHeartbeat{1000};
inline constexpr std::chrono::milliseconds kMirrorHeartbeatStale{5000};
SwitchOutcome run_mirror_recover(const std::string& route, const routing::MigrationState& current,
                                 const SwitchEndpoints& endpoints, control::Fleet& fleet,
                                 const MirrorStartOptions& options,
                                 const StepListener& listener = {});

// The route to phase `phase` through the fleet: hold (open transactions drained), commit; a
// failed commit is aborted. The committed state, or std::runtime_error saying which of the
// two did not happen (the route is then unchanged).
routing::MigrationState commit_phase_through_fleet(control::Fleet& fleet, const std::string& route,
                                                   const std::string& kind,
                                                   const std::string& actor,
                                                   std::chrono::milliseconds drain_timeout,
                                                   config::Phase phase);

SwitchOutcome run_mirror_stop(const std::string& route, const routing::MigrationState& current,
                              control::Fleet& fleet, const MirrorStartOptions& options,
                              const StepListener& listener = {});

}  // namespace pgshift::migrate
