#pragma once
// The fleet as a migration coordinator sees it (DESIGN.md §6, §7): every sidecar serving a
// route, moved together through a barrier. A coordinator (mirror start, cutover, rollback)
// calls hold(), does its work on the databases while no member starts a transaction of the
// route, then commit()s a state change (the commit point: members apply it and release the
// held transactions onto the new state) or abort()s (members release them unchanged).
//
// Implementations: the PostgreSQL control plane (every member acknowledges in the control
// database) and, without a control database, the local sidecar alone.
//
// Thread-safety: the calls block the calling thread (a coordinator thread or a CLI process,
// never an I/O thread). One operation per route at a time; a second hold() of a route that
// is held fails with a message naming the operation in progress.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "routing/migration_state.hpp"

namespace pgshift::control {

struct HoldRequest {
  std::string route;
  std::string kind;                               // "cutover", "rollback", "mirror_start", ...
  std::string actor;                              // who asked: token id, "cli@host", ...
  std::chrono::milliseconds drain_timeout{5000};  // open transactions must end within this
  std::chrono::milliseconds deadline{15000};      // members release by themselves after it
};

struct HoldResult {
  bool ok = false;
  std::string error;                    // why not: a member did not acknowledge, drain timed out...
  std::uint64_t epoch = 0;              // the route's epoch when held (commit makes it epoch + 1)
  int members = 0;                      // members holding
  std::uint64_t held_transactions = 0;  // transactions waiting at the barrier right now
};

struct CommitResult {
  bool ok = false;
  std::string error;
  routing::MigrationState state;  // the committed state (epoch + 1)
};

class Fleet {
 public:
  virtual ~Fleet() = default;
  virtual HoldResult hold(const HoldRequest& request) = 0;
  // The commit point: the change is durable once this returns ok; members apply it at once
  // and release their held transactions onto it.
  virtual CommitResult commit(const std::string& route, const routing::StateChange& change) = 0;
  // Releases the hold without a change. Idempotent.
  virtual void abort(const std::string& route, std::string_view reason) = 0;
};

}  // namespace pgshift::control
