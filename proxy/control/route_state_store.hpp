#pragma once
// The migration state of every route (phase, read percent, epoch) for a sidecar without a
// control database (DESIGN.md §7): held as an immutable snapshot that readers take cheaply
// and keep for as long as they like (a session takes one per transaction), changed only
// through routing::apply() (which validates and bumps the epoch), and persisted to the
// config's state_file with an atomic write *before* the new snapshot is published, so a
// state that anyone has seen survives a crash or restart.
//
// Thread-safety: every member may be called from any thread. Changes are serialized; the
// write (fsync included) happens on the caller's thread, so callers on an I/O thread block
// it for the duration of one small file write (admin changes are rare).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

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

// Thrown by load() for a state file that exists but cannot be used.
class StateFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class StateChangeError { none, unknown_route, invalid, persist_failed };

struct StateChangeResult {
  StateChangeError error = StateChangeError::none;
  std::string message;             // for callers (API responses); empty when ok
  routing::MigrationState before;  // valid unless unknown_route
  routing::MigrationState after;   // == before when nothing changed or on error
  bool ok() const { return error == StateChangeError::none; }
  bool changed() const { return ok() && after.epoch != before.epoch; }
};

class RouteStateStore {
 public:
  using Clock = std::function<std::int64_t()>;  // unix milliseconds
  // Called after a change is persisted and published, on the thread that made it, in epoch
  // order (changes are serialized). Must not block and must not call apply().
  using Listener =
      std::function<void(const std::string& route, const routing::MigrationState& before,
                         const routing::MigrationState& after)>;

  // `path` empty: keep state in memory only (tests). `clock` defaults to the system clock.
  explicit RouteStateStore(std::string path, Clock clock = {});

  // Startup: reads the state file. A missing file gives every route of `cfg` its default
  // (phase source_only, read_split.initial_read_percent, epoch 0); routes in the file that
  // are not in `cfg` are dropped with a warning; routes of `cfg` missing from the file get
  // defaults. Throws StateFileError with the path and the reason for a file that is
  // unreadable, not JSON, of the wrong shape or from a newer pgshift.
  void load(const config::Config& cfg);

  // Config reload: adds defaults for new routes and drops removed ones (with a warning).
  // Not persisted until the next change.
  void reconcile(const config::Config& cfg);

  RouteStatesPtr snapshot() const;

  // Applies one change to one route; on success the new state is on disk and published.
  StateChangeResult apply(std::string_view route, const routing::StateChange& change);

  // Returns an id for unsubscribe().
  std::uint64_t subscribe(Listener listener);
  void unsubscribe(std::uint64_t id);

  const std::string& path() const { return path_; }

 private:
  void publish(RouteStatesPtr next);
  static routing::MigrationState initial_state(const config::Route& route);

  std::string path_;
  Clock clock_;
  std::mutex write_mu_;         // serializes load/reconcile/apply (and the file writes)
  mutable std::mutex read_mu_;  // guards only the pointer swap and copy
  RouteStatesPtr current_;
  std::mutex listeners_mu_;
  std::map<std::uint64_t, std::shared_ptr<const Listener>> listeners_;
  std::uint64_t next_listener_ = 1;
};

// Writes `contents` to `path` so that a crash leaves either the old or the new file, never a
// mix: a temporary file in the same directory, fsync, rename over `path`, fsync of the
// directory. Returns an empty string on success, else a message naming the failed step.
std::string write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace pgshift::proxy
