#pragma once
// The migration state of every route (phase, read percent, epoch) as the data path and the
// admin API see it, whatever keeps it (DESIGN.md §7, docs/control-plane.md):
//   RouteStateStore  the state file of a sidecar without a control database;
//   PgStateStore     the fleet's shared state in the control database (schema pgshift).
//
// The data path reads snapshot(): an immutable RouteStates that readers take cheaply (one
// mutex-guarded shared_ptr copy, non-virtual) and keep for as long as they like (a session
// takes one per transaction). Changes go through change(), which answers asynchronously so
// that a caller on an I/O thread never waits on a file or a database.
//
// Thread-safety: every member may be called from any thread.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "routing/migration_state.hpp"

namespace pgshift::proxy {

// The state of all routes at one moment. Never modified once published.
struct RouteStates {
  std::map<std::string, routing::MigrationState, std::less<>> routes;
  const routing::MigrationState* find(std::string_view name) const {
    auto it = routes.find(name);
    return it == routes.end() ? nullptr : &it->second;
  }
};
using RouteStatesPtr = std::shared_ptr<const RouteStates>;

enum class StateChangeError {
  none,
  unknown_route,
  invalid,         // the change itself is wrong (400)
  persist_failed,  // the state file could not be written (500)
  conflict,        // compare-and-set lost: the epoch moved (409)
  busy,            // a barrier operation holds the route (409)
  unavailable,     // the control database cannot be reached (503)
};

struct StateChangeResult {
  StateChangeError error = StateChangeError::none;
  std::string message;             // for callers (API responses); empty when ok
  routing::MigrationState before;  // valid unless unknown_route (for conflict: the current)
  routing::MigrationState after;   // == before when nothing changed or on error
  bool ok() const { return error == StateChangeError::none; }
  bool changed() const { return ok() && after.epoch != before.epoch; }
};

struct ChangeRequest {
  std::string route;
  routing::StateChange change;
  // Who asked, for the audit trail: "admin:<token id>@<peer>", "cli@host"... never a secret.
  std::string actor;
  // Compare-and-set: the change applies only while the route is at this epoch. Absent: the
  // epoch of snapshot() when the request was made.
  std::optional<std::uint64_t> expected_epoch;
};

// One sidecar of the fleet as the control plane sees it.
struct MemberView {
  std::string id;
  std::string version;
  std::string address;
  std::vector<std::string> routes;
  std::map<std::string, std::uint64_t> applied;  // route -> epoch applied
  std::int64_t heartbeat_age_ms = 0;
  bool live = true;
  bool self = false;
};

struct ControlStatus {
  std::string mode;       // "file" or "postgres"
  bool connected = true;  // file: always
  std::string member_id;
  std::string database;  // "host:port/db as user" (never a password); empty for file
  std::string error;     // the last connection error while disconnected
  std::int64_t member_timeout_ms = 0;
};

class StateStore {
 public:
  // Called after a change is published, in epoch order per route. Must not block and must
  // not call change().
  using Listener =
      std::function<void(const std::string& route, const routing::MigrationState& before,
                         const routing::MigrationState& after)>;
  // Called exactly once per change(), on the caller's thread (file) or the control thread.
  using Done = std::function<void(StateChangeResult)>;

  virtual ~StateStore() = default;

  RouteStatesPtr snapshot() const {
    std::lock_guard lock(read_mu_);
    return current_;
  }

  // Startup and config reload: every route of `cfg` gets a state (saved or initial).
  virtual void load(const config::Config& cfg) = 0;
  virtual void reconcile(const config::Config& cfg) = 0;

  // One change of one route. Never blocks the caller on I/O it does not own: the file store
  // writes (fsync) on the caller's thread, the PostgreSQL store hands it to its thread.
  virtual void change(ChangeRequest request, Done done) = 0;

  // A session met the fence of a side the route left (docs/cutover.md, stale sidecars): read
  // the shared state again now instead of at the next poll. Never waits on a database; the
  // new state, if any, appears in snapshot() later (PostgreSQL store: within one turn of
  // its thread) or at once (file store: re-reads its state file, a few hundred bytes).
  virtual void refresh_soon() {}

  // Shutdown (SIGTERM): leave the fleet. Idempotent; snapshot() stays valid.
  virtual void close() {}

  virtual ControlStatus control_status() const = 0;
  // The fleet as last seen (the PostgreSQL store refreshes it every poll); this sidecar only
  // for the file store.
  virtual std::vector<MemberView> members() const = 0;

  // Returns an id for unsubscribe().
  std::uint64_t subscribe(Listener listener);
  void unsubscribe(std::uint64_t id);

 protected:
  StateStore() : current_(std::make_shared<const RouteStates>()) {}
  void publish(RouteStatesPtr next) {
    std::lock_guard lock(read_mu_);
    current_ = std::move(next);
  }
  // Calls every listener; callers serialize their changes so listeners see epoch order.
  void notify(const std::string& route, const routing::MigrationState& before,
              const routing::MigrationState& after);

 private:
  mutable std::mutex read_mu_;  // guards only the pointer swap and copy
  RouteStatesPtr current_;
  std::mutex listeners_mu_;
  std::map<std::uint64_t, std::shared_ptr<const Listener>> listeners_;
  std::uint64_t next_listener_ = 1;
};

// The state of a route nobody has changed yet: phase source_only, the configured initial
// read percent (rounded to two decimals), epoch 0.
routing::MigrationState initial_route_state(const config::Route& route);

}  // namespace pgshift::proxy
