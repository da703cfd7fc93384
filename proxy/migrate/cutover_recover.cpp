// Recovery of an operation whose coordinator died in phase cutover (SwitchKind::recover,
// docs/cutover.md "Failures"). What the dead coordinator left depends on the step it reached;
// every step here is idempotent and converges on the state before the operation:
//   old side authoritative and unfenced, its stream to the new side running, the new side
//   fenced (it is not authoritative), no reverse stream, phase back to the one it came from.
// Re-creating the stream at the current position loses nothing: if it was dropped, the old
// side was fenced before (stop_stream comes after fence and catch_up), and the new side took
// no write (the commit never happened).
#include "proxy/migrate/cutover_switch.hpp"

namespace pgshift::migrate::detail {

void Switch::recover_steps() {
  if (opt_.mirror) {
    // sync.mode mirror: no stream to drop or restore; the sidecars mirror towards whichever
    // side is not authoritative once the commit below names it.
    recover_fences();
    return;
  }
  if (!step("drop_reverse_stream", [&] {
        drop_subscription(from(), dir_.out_stream);
        // A coordinator that died inside CREATE SUBSCRIPTION may leave the slot alone.
        auto r = to().exec(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = $1 AND NOT active",
            {dir_.out_stream});
        return "no subscription " + dir_.out_stream + " on the " + dir_.from_name +
               (r.rows() > 0 ? ", leftover slot dropped on the " + dir_.to_name : "");
      })) {
    return;
  }
  if (!step("restore_stream", [&] {
        if (subscription_health(to(), dir_.in_stream).exists) {
          return "subscription " + dir_.in_stream + " still there";
        }
        create_subscription(to(), dir_.in_stream, from_as_seen_from_to(), dir_.in_stream);
        return "subscription " + dir_.in_stream + " re-created on the " + dir_.to_name +
               " (copy_data = false)";
      })) {
    return;
  }
  recover_fences();
}

// fence_new_side -> unfence_old_side -> commit
void Switch::recover_fences() {
  if (!step("fence_new_side", [&] {
        tables_ = opt_.mirror ? opt_.mirror->tables(from())
                              : publication_tables(from(), dir_.in_stream);
        fence_tables(to(), tables_, route_, dir_.from_name, opt_.drain_timeout);
        return std::to_string(tables_.size()) + " table(s) of the " + dir_.to_name +
               " fenced (the route stays on the " + dir_.from_name + ")";
      })) {
    return;
  }
  if (!step("unfence_old_side", [&] {
        auto fenced = fenced_tables(from());
        unfence_tables(from(), fenced);
        return std::to_string(fenced.size()) + " fence trigger(s) dropped on the " + dir_.from_name;
      })) {
    return;
  }
  step("commit", [&] {
    auto c = fleet_.commit(route_, routing::SetPhase{dir_.commit_phase});
    if (!c.ok) throw std::runtime_error("the fleet did not commit: " + c.error);
    undo_.clear();
    out_.result = "completed";
    return "phase " + std::string(routing::phase_name(c.state.phase)) + " at epoch " +
           std::to_string(c.state.epoch);
  });
}

}  // namespace pgshift::migrate::detail
