#pragma once
// The migration state of one route (DESIGN.md §4, §6): phase, read percent, epoch. A value
// type: the proxy holds it as an immutable snapshot (shared_ptr<const ...>) and swaps it
// atomically; every change goes through apply(), which validates it against the transition
// table and bumps the epoch. Time is passed in (unix milliseconds); nothing here reads a
// clock, a file or a socket. Persistence lives in the proxy; JSON is in state_json.hpp.
//
// Phase transitions (forward and rollback):
//
//   source_only --> sync --> cutover --> target_primary --> target_only
//        ^           | ^        |  ^          |   ^              |
//        +-----------+ +--------+  +----------+   +--------------+
//
//   source_only    -> sync            start keeping the target in sync
//   sync           -> source_only     abandon the migration
//   sync           -> cutover         begin a cutover (source still authoritative)
//   cutover        -> target_primary  commit point of a cutover
//   cutover        -> sync            cutover aborted, or a rollback committed
//   target_primary -> cutover         begin a rollback (target still authoritative)
//   target_primary -> target_only     stop reverse sync: the source is retired
//   target_only    -> target_primary  resume reverse sync (to make rollback possible again)
//
// cutover is transient; its authoritative side is that of the phase it was entered from
// (previous_phase). Setting the same value again is a no-op: state and epoch unchanged.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "config/config.hpp"
#include "routing/errc.hpp"
#include "routing/side.hpp"
#include "routing/split.hpp"

namespace pgshift::routing {

using config::Phase;

// Same spelling as config::to_string(Phase): "source_only", "sync", "cutover",
// "target_primary", "target_only".
std::string_view phase_name(Phase p);
std::optional<Phase> parse_phase(std::string_view name);

struct MigrationState {
  Phase phase = Phase::source_only;
  ReadPercent read_percent;
  std::uint64_t epoch = 0;
  std::int64_t updated_at_ms = 0;             // unix milliseconds of the last change
  Phase previous_phase = Phase::source_only;  // before the last phase change

  bool operator==(const MigrationState&) const = default;
};

// Where every write goes: the source until the cutover commits, the target after.
Side authoritative_side(const MigrationState& s);

struct SetReadPercent {
  std::uint32_t basis_points = 0;  // validated: 0..10000
};
struct SetPhase {
  Phase phase = Phase::source_only;
};
using StateChange = std::variant<SetReadPercent, SetPhase>;

struct PhaseTransition {
  Phase from;
  Phase to;
};

std::span<const PhaseTransition> phase_transitions();
bool transition_allowed(Phase from, Phase to);

// The new state, or invalid_read_percent / invalid_transition with a message.
Result<MigrationState> apply(const MigrationState& current, const StateChange& change,
                             std::int64_t now_ms);

}  // namespace pgshift::routing
