#pragma once
// Internal to proxy/migrate/cutover_*.cpp: the Switch that runs one operation's steps
// (cutover_coordinator.cpp: preconditions, cutover/rollback/finalize steps;
// cutover_recover.cpp: recovery of an interrupted operation). Not a public interface.
#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "proxy/migrate/cutover_coordinator.hpp"
#include "proxy/migrate/cutover_db.hpp"
#include "proxy/migrate/names.hpp"

namespace pgshift::migrate::detail {

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
using config::Phase;
using pgclient::Connection;

inline ms since(Clock::time_point t) {
  return std::chrono::duration_cast<ms>(Clock::now() - t);
}

// A step that refuses the operation before anything changed.
struct Refusal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Which way the route moves, as the steps see it: "from" is authoritative now, "to" will be.
struct Direction {
  std::string from_name, to_name;  // "source" / "target"
  std::string in_stream;           // from -> to: publication on from, subscription on to
  std::string out_stream;          // to -> from: created by this operation
  Phase expected = Phase::sync;
  Phase commit_phase = Phase::target_primary;
};

// `reversed`: the old side is the target (a rollback, or the recovery of one).
inline Direction direction_of(SwitchKind kind, const std::string& route, bool reversed) {
  Direction d;
  const bool cut = !reversed;
  d.from_name = cut ? "source" : "target";
  d.to_name = cut ? "target" : "source";
  d.in_stream =
      publication_name(route, cut ? migrate::Direction::forward : migrate::Direction::reverse);
  d.out_stream =
      publication_name(route, cut ? migrate::Direction::reverse : migrate::Direction::forward);
  switch (kind) {
    case SwitchKind::cutover:
      d.expected = Phase::sync;
      d.commit_phase = Phase::target_primary;
      break;
    case SwitchKind::rollback:
      d.expected = Phase::target_primary;
      d.commit_phase = Phase::sync;
      break;
    case SwitchKind::finalize:
      d.expected = Phase::target_primary;
      d.commit_phase = Phase::target_only;
      break;
    case SwitchKind::recover:  // back to where the interrupted operation started
      d.expected = Phase::cutover;
      d.commit_phase = reversed ? Phase::target_primary : Phase::sync;
      break;
    case SwitchKind::mirror_start:  // not a switch (mirror_start.hpp)
    case SwitchKind::mirror_stop:
      break;
  }
  return d;
}

class Switch {
 public:
  Switch(SwitchKind kind, const std::string& route, const routing::MigrationState& current,
         const SwitchEndpoints& ep, control::Fleet& fleet, const SwitchOptions& opt,
         const StepListener& listener)
      : kind_(kind),
        route_(route),
        current_(current),
        ep_(ep),
        fleet_(fleet),
        opt_(opt),
        listener_(listener),
        reversed_(kind == SwitchKind::rollback ||
                  (kind == SwitchKind::recover && current.previous_phase == Phase::target_primary)),
        dir_(direction_of(kind, route, reversed_)) {
    out_.kind = kind;
    out_.route = route;
  }

  SwitchOutcome run();

 private:
  // Runs `body` as the step `name`; returns false when it failed (outcome filled in).
  template <typename Body>
  bool step(const std::string& name, Body&& body);
  void record(StepRecord r);
  void undo_all();
  void preconditions();
  void stream_preconditions();
  // `divergence_unix_ms`: the mirror's last divergence (0: none); the clean verify run must
  // have finished after it.
  void verify_precondition(std::int64_t divergence_unix_ms = 0) const;
  // sync.mode mirror (cutover_mirror.cpp).
  void mirror_preconditions();
  bool mirror_catch_up();
  bool reverse_mirror_step();
  control::HoldRequest hold_request(std::string kind) const;
  void change_phase(Phase phase, const std::string& why);
  bool begin_step();
  bool hold_step();
  void finish();
  void switch_steps();
  void move_streams();
  void unfence_and_commit();
  void finalize_steps();
  void recover_steps();  // cutover_recover.cpp
  void recover_fences();
  std::string databases_after_undo() const;

  Connection& from() { return reversed_ ? target_ : source_; }
  Connection& to() { return reversed_ ? source_ : target_; }
  const std::string& from_as_seen_from_to() const {
    return reversed_ ? ep_.target_as_seen_from_source : ep_.source_as_seen_from_target;
  }
  const std::string& to_as_seen_from_from() const {
    return reversed_ ? ep_.source_as_seen_from_target : ep_.target_as_seen_from_source;
  }

  SwitchKind kind_;
  std::string route_;
  routing::MigrationState current_;
  const SwitchEndpoints& ep_;
  control::Fleet& fleet_;
  SwitchOptions opt_;
  const StepListener& listener_;
  bool reversed_;  // the old side is the target
  Direction dir_;
  Connection source_, target_;
  std::vector<TableName> tables_;
  struct Undo {
    std::string name;
    std::function<void()> run;
  };
  std::vector<Undo> undo_;
  std::vector<std::string> undone_;
  std::optional<Clock::time_point> held_at_;
  SwitchOutcome out_;
};

template <typename Body>
bool Switch::step(const std::string& name, Body&& body) {
  const auto start = Clock::now();
  StepRecord r{name, "ok", ms(0), {}};
  try {
    r.detail = body();
  } catch (const Refusal& e) {
    r.status = "refused";
    r.detail = e.what();
  } catch (const std::exception& e) {
    // Before the hold nothing has changed yet: an error there (a database unreachable)
    // refuses the operation like a failed check.
    r.status = undo_.empty() && !held_at_ && name == "preconditions" ? "refused" : "failed";
    r.detail = e.what();
  }
  r.duration = since(start);
  const bool ok = r.status == "ok";
  if (!ok) {
    out_.result = r.status == "refused" ? "refused" : "aborted";
    out_.error = name + ": " + r.detail;
  }
  record(std::move(r));
  return ok;
}

}  // namespace pgshift::migrate::detail
