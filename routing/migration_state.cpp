#include "routing/migration_state.hpp"

#include <algorithm>
#include <string>

namespace pgshift::routing {
namespace {

constexpr PhaseTransition kTransitions[] = {
    {Phase::source_only, Phase::sync},
    {Phase::sync, Phase::source_only},
    {Phase::sync, Phase::cutover},
    {Phase::cutover, Phase::target_primary},
    {Phase::cutover, Phase::sync},
    {Phase::target_primary, Phase::cutover},
    {Phase::target_primary, Phase::target_only},
    {Phase::target_only, Phase::target_primary},
};

Side side_of(Phase p) {
  return (p == Phase::target_primary || p == Phase::target_only) ? Side::target : Side::source;
}

}  // namespace

std::string_view phase_name(Phase p) {
  return config::to_string(p);
}

std::optional<Phase> parse_phase(std::string_view name) {
  return config::phase_from_string(name);
}

Side authoritative_side(const MigrationState& s) {
  return s.phase == Phase::cutover ? side_of(s.previous_phase) : side_of(s.phase);
}

std::span<const PhaseTransition> phase_transitions() {
  return kTransitions;
}

bool transition_allowed(Phase from, Phase to) {
  return std::any_of(std::begin(kTransitions), std::end(kTransitions),
                     [&](const PhaseTransition& t) { return t.from == from && t.to == to; });
}

Result<MigrationState> apply(const MigrationState& current, const StateChange& change,
                             std::int64_t now_ms) {
  MigrationState next = current;
  if (const auto* p = std::get_if<SetReadPercent>(&change)) {
    const auto percent = ReadPercent::from_basis_points(p->basis_points);
    if (!percent) {
      return Result<MigrationState>::failure(errc::invalid_read_percent,
                                             "read percent must be between 0 and 100 (got " +
                                                 std::to_string(p->basis_points / 100) + "." +
                                                 std::to_string(p->basis_points % 100 / 10) +
                                                 std::to_string(p->basis_points % 10) + ")");
    }
    if (*percent == current.read_percent) return Result<MigrationState>::success(current);
    next.read_percent = *percent;
  } else {
    const Phase to = std::get<SetPhase>(change).phase;
    if (to == current.phase) return Result<MigrationState>::success(current);
    if (!transition_allowed(current.phase, to)) {
      return Result<MigrationState>::failure(errc::invalid_transition,
                                             "cannot change phase from " +
                                                 std::string(phase_name(current.phase)) + " to " +
                                                 std::string(phase_name(to)));
    }
    next.previous_phase = current.phase;
    next.phase = to;
  }
  next.epoch = current.epoch + 1;
  next.updated_at_ms = now_ms;
  return Result<MigrationState>::success(next);
}

}  // namespace pgshift::routing
