#include "routing/router.hpp"

namespace pgshift::routing {

std::string_view to_string(Reason r) {
  switch (r) {
    case Reason::no_target:
      return "no_target";
    case Reason::target_only:
      return "target_only";
    case Reason::authoritative_write:
      return "authoritative_write";
    case Reason::authoritative_statement:
      return "authoritative_statement";
    case Reason::empty_query:
      return "empty_query";
    case Reason::session_pinned:
      return "session_pinned";
    case Reason::cutover_in_progress:
      return "cutover_in_progress";
    case Reason::split_source:
      return "split_source";
    case Reason::split_target:
      return "split_target";
    case Reason::ryw_hold:
      return "ryw_hold";
    case Reason::target_unhealthy_fallback:
      return "target_unhealthy_fallback";
    case Reason::source_unhealthy_fallback:
      return "source_unhealthy_fallback";
    case Reason::target_lagging:
      return "target_lagging";
  }
  return "invalid";
}

RouteDecision decide(const RouterInput& in) {
  const MigrationState& state = *in.state;
  const Side auth = in.has_target ? authoritative_side(state) : Side::source;

  if (!in.has_target) return {Side::source, Reason::no_target};
  if (state.phase == Phase::target_only) return {Side::target, Reason::target_only};

  switch (in.statement) {
    case StatementClass::read_only:
    case StatementClass::transaction_begin_read_only:
      break;
    case StatementClass::write:
    case StatementClass::ddl:
      return {auth, Reason::authoritative_write};
    case StatementClass::empty:
      return {auth, Reason::empty_query};
    default:
      return {auth, Reason::authoritative_statement};
  }
  if (in.session_pinned) return {auth, Reason::session_pinned};
  if (state.phase == Phase::cutover) return {auth, Reason::cutover_in_progress};

  const Side split = goes_to_target(in.key, state.read_percent) ? Side::target : Side::source;
  const Reason split_reason = split == Side::target ? Reason::split_target : Reason::split_source;
  if (split == auth) return {auth, split_reason};
  if (in.ryw != nullptr && in.ryw->must_hold(in.key, in.now_ms)) {
    return {auth, Reason::ryw_hold};
  }
  if (split == Side::target && !in.target_healthy) {
    return {auth, Reason::target_unhealthy_fallback};
  }
  if (split == Side::target && in.target_lagging) return {auth, Reason::target_lagging};
  if (split == Side::source && !in.source_healthy) {
    return {auth, Reason::source_unhealthy_fallback};
  }
  return {split, split_reason};
}

}  // namespace pgshift::routing
