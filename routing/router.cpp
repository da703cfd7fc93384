#include "routing/router.hpp"

namespace pgshift::routing {

std::string_view to_string(Reason r) {
  switch (r) {
    case Reason::in_transaction:
      return "in_transaction";
    case Reason::read_only_transaction_write:
      return "read_only_transaction_write";
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

bool allowed_in_read_only_transaction(StatementClass c, bool only_unknown_functions) {
  switch (c) {
    case StatementClass::empty:
    case StatementClass::read_only:
    case StatementClass::transaction_begin:
    case StatementClass::transaction_begin_read_only:
    case StatementClass::transaction_end:
    case StatementClass::savepoint:
    case StatementClass::set_local:
    case StatementClass::other:
      return true;
    case StatementClass::write:
      return only_unknown_functions;
    default:
      return false;
  }
}

RouteDecision decide(const RouterInput& in) {
  const MigrationState& state = *in.state;
  const Side auth = in.has_target ? authoritative_side(state) : Side::source;

  if (in.transaction_side) {
    const Side side = *in.transaction_side;
    if (side != auth &&
        !allowed_in_read_only_transaction(in.statement, in.only_unknown_functions)) {
      return {side, Reason::read_only_transaction_write, true};
    }
    return {side, Reason::in_transaction, false};
  }
  if (!in.has_target) return {Side::source, Reason::no_target, false};
  if (state.phase == Phase::target_only) return {Side::target, Reason::target_only, false};

  switch (in.statement) {
    case StatementClass::read_only:
    case StatementClass::transaction_begin_read_only:
      break;
    case StatementClass::write:
    case StatementClass::ddl:
      return {auth, Reason::authoritative_write, false};
    case StatementClass::empty:
      return {auth, Reason::empty_query, false};
    default:
      return {auth, Reason::authoritative_statement, false};
  }
  if (in.session_pinned) return {auth, Reason::session_pinned, false};
  if (state.phase == Phase::cutover) return {auth, Reason::cutover_in_progress, false};

  const Side split = goes_to_target(in.key, state.read_percent) ? Side::target : Side::source;
  const Reason split_reason = split == Side::target ? Reason::split_target : Reason::split_source;
  if (split == auth) return {auth, split_reason, false};
  if (in.ryw != nullptr && in.ryw->must_hold(in.key, in.now_ms)) {
    return {auth, Reason::ryw_hold, false};
  }
  if (split == Side::target && !in.target_healthy) {
    return {auth, Reason::target_unhealthy_fallback, false};
  }
  if (split == Side::target && in.target_lagging) return {auth, Reason::target_lagging, false};
  if (split == Side::source && !in.source_healthy) {
    return {auth, Reason::source_unhealthy_fallback, false};
  }
  return {split, split_reason, false};
}

}  // namespace pgshift::routing
