#pragma once
// The StateStore of a sidecar without a control database (DESIGN.md §7, control: file): held as an
// immutable snapshot that readers take cheaply and keep for as long as they like (a session takes
// one per transaction), changed only through routing::apply() (which validates and bumps the
// epoch), and persisted to the config's state_file with an atomic write *before* the new snapshot
// is published, so a state that anyone has seen survives a crash or restart.
//
// Thread-safety: every member may be called from any thread. Changes are serialized; the
// write (fsync included) happens on the caller's thread, so callers on an I/O thread block
// it for the duration of one small file write (admin changes are rare).
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "proxy/control/state_store.hpp"
#include "routing/migration_state.hpp"

namespace pgshift::proxy {

// Thrown by load() for a state file that exists but cannot be used.
class StateFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class RouteStateStore : public StateStore {
 public:
  using Clock = std::function<std::int64_t()>;  // unix milliseconds

  // `path` empty: keep state in memory only (tests). `clock` defaults to the system clock.
  explicit RouteStateStore(std::string path, Clock clock = {});

  // Startup: reads the state file. A missing file gives every route of `cfg` its default
  // (phase source_only, read_split.initial_read_percent, epoch 0); routes of `cfg` missing
  // from the file get defaults. Routes in the file that are not in `cfg` are retired (kept,
  // with a warning, and written back with every change): a route that comes back resumes
  // from its state, so an epoch never goes backwards. Throws StateFileError with the path
  // and the reason for a file that is unreadable, not JSON, of the wrong shape or from a
  // newer pgshift.
  void load(const config::Config& cfg) override;

  // Config reload: adds defaults for new routes, retires removed ones and restores retired
  // ones that are back (each logged and audited). The file already holds all of them.
  void reconcile(const config::Config& cfg) override;

  // Applies one change to one route; on success the new state is on disk and published.
  // Listeners are called on this thread.
  StateChangeResult apply(std::string_view route, const routing::StateChange& change);
  // apply() with the compare-and-set of request.expected_epoch; `done` runs before return.
  void change(ChangeRequest request, Done done) override;
  // Re-reads the state file and publishes every route whose saved epoch is newer than the
  // one served (a state file another sidecar's coordinator wrote, on a shared volume).
  // Unreadable files are logged and ignored.
  void refresh_soon() override;
  ControlStatus control_status() const override;
  std::vector<MemberView> members() const override;

  const std::string& path() const { return path_; }

 private:
  StateChangeResult apply_locked(std::string_view route, const routing::StateChange& change,
                                 std::optional<std::uint64_t> expected_epoch);

  // Publishes the states of `cfg`'s routes from `known` (live or retired) or defaults, and
  // retires the rest of `known`. Requires write_mu_.
  void merge_locked(const config::Config& cfg, const RouteStates& known, std::string_view why);

  std::string path_;
  Clock clock_;
  std::mutex write_mu_;  // serializes load/reconcile/apply (and the file writes)
  // Routes removed from the configuration, with their last state (write_mu_). Kept in the
  // state file next to the live ones, so nothing about them is lost until they return.
  std::map<std::string, routing::MigrationState, std::less<>> retired_;
};

// Writes `contents` to `path` so that a crash leaves either the old or the new file, never a
// mix: a temporary file in the same directory, fsync, rename over `path`, fsync of the
// directory. Returns an empty string on success, else a message naming the failed step.
std::string write_file_atomically(const std::string& path, std::string_view contents);

}  // namespace pgshift::proxy
