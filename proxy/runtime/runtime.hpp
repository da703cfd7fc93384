#pragma once
// Process-wide state shared by every session: the current configuration snapshot (config,
// users file, TLS contexts), swapped atomically on reload, the cancel registry and the
// drain flag. Thread-safe.
#include <atomic>
#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/hba.hpp"
#include "config/users.hpp"
#include "proxy/runtime/cancel_registry.hpp"
#include "proxy/runtime/client_slots.hpp"
#include "proxy/runtime/memory_budget.hpp"
#include "routing/classifier.hpp"
#include "routing/read_your_writes.hpp"
#include "routing/sync_position.hpp"

namespace pgshift::pool {
class PoolRegistry;
}

namespace pgshift::proxy {

namespace asio = boost::asio;

struct RouteRuntime {
  const config::Route* route = nullptr;                        // points into Snapshot::config
  std::shared_ptr<asio::ssl::context> source_tls, target_tls;  // null when tls disabled
  std::shared_ptr<const routing::Classifier> classifier;       // the route's rules
  // Read your writes, shared by every session of the route (a user may write through one
  // connection and read through another). Kept across reloads while the window is the same.
  std::shared_ptr<routing::ReadYourWrites> ryw;
  // Client connections of the route (pool.max_client_connections), over all I/O threads.
  // Kept across reloads while a route of the same name exists; never null.
  std::shared_ptr<ClientSlots> client_slots;
  // sync.mode logical or mirror (else null): how far the other side has caught up, fed by
  // the sidecar's lag monitor (logical, proxy/migrate/lag_monitor.hpp) or the mirror's
  // replay (proxy/mirror/replay.cpp); gates split reads and answers read-your-writes
  // (MarkerOracle instead of the window). Kept across reloads while the route stays synced.
  std::shared_ptr<routing::SyncPosition> sync{};
};

struct Snapshot {
  config::ConfigPtr config;
  std::shared_ptr<const config::UsersFile> users;  // null when client auth is trust
  // client_auth.hba_file's rules; null when not set (client_auth.method for everyone).
  std::shared_ptr<const config::HbaFile> hba;
  std::shared_ptr<asio::ssl::context> client_tls;  // null when listen.tls.mode == disable
  std::vector<RouteRuntime> routes;                // parallel to config->routes
  std::shared_ptr<const std::string> admin_token;
};
using SnapshotPtr = std::shared_ptr<const Snapshot>;

// Loads everything a config refers to (users file, certificates, CA files, token). Returns
// null and fills `errors` if anything is wrong; never logs secrets. Read-your-writes state
// of routes that `previous` has too (same name and window) is carried over, and so is the
// client count of routes of the same name (whatever their limits).
SnapshotPtr build_snapshot(config::ConfigPtr config, std::vector<std::string>& errors,
                           const Snapshot* previous = nullptr);

class StateStore;
class PauseGate;
class HealthChecker;
class RouteOperations;
class MirrorSink;

// Settings this build accepts but does not honour yet, as sentences for the log and
// check-config (e.g. sync modes, which come with the sync feature).
std::vector<std::string> unsupported_setting_warnings(const config::Config& config);

class Runtime {
 public:
  explicit Runtime(SnapshotPtr initial) : snapshot_(std::move(initial)) {}
  SnapshotPtr snapshot() const {
    std::lock_guard lock(mu_);
    return snapshot_;
  }
  void replace(SnapshotPtr next) {
    std::lock_guard lock(mu_);
    snapshot_ = std::move(next);
  }

  CancelRegistry cancels;
  // The operator surface (proxy/route_state_store.hpp, pause_gate.hpp, health_checker.hpp).
  // Set by Server::run() before any session starts and never replaced, so sessions read the
  // pointers without locking; null in unit tests that do not need them.
  std::shared_ptr<StateStore> states;
  std::shared_ptr<PauseGate> pause;
  std::shared_ptr<HealthChecker> health;
  // Cutover, rollback and finalize (proxy/runtime/operations.hpp); null when not wired.
  std::shared_ptr<RouteOperations> operations;
  // Mirrored writes (proxy/runtime/mirror_sink.hpp); null when no route mirrors.
  std::shared_ptr<MirrorSink> mirror;
  // Every server pool of the process (pool/pool_shared.hpp), for the admin API, the
  // periodic pool log line and the pool metrics. Same convention as the pointers above.
  std::shared_ptr<pool::PoolRegistry> pools;
  std::atomic<bool> draining{false};
  std::atomic<long> active_sessions{0};
  // Protocol messages held whole by the relays, over all sessions
  // (limits.buffered_memory_bytes).
  MemoryBudget buffered_messages;

 private:
  mutable std::mutex mu_;
  SnapshotPtr snapshot_;
};

}  // namespace pgshift::proxy
