#pragma once
// The lag monitor of a logical-sync route (DESIGN.md §5), run by every sidecar for each
// route with sync.mode logical.
//
// Every sync.heartbeat_ms it upserts the route's row of pgshift.heartbeat on the
// authoritative side (origin 'source' or 'target', seq + 1, now()), noting the local steady
// time just before; it reads the newest marker visible on the other side every
// heartbeat_ms / 10 (10..100 ms) together with the subscription's state. Once every table of
// the subscription is ready, the steady time noted for the newest marker visible there is
// published to the route's routing::SyncPosition (the read split's lag gate and the
// read-your-writes oracle). Metrics: pgshift_sync_lag_seconds{route} and
// pgshift_sync_state{route,state}.
//
// Robustness: libpq calls block only this monitor's own thread (never an I/O thread), with
// a 2 s connect timeout and statement timeout. Either database down: the monitor retries on
// its next tick, nothing is published, so the lag seen by sessions grows and reads fall back.
//
// Thread-safety: start/stop from one thread (the server's); the monitor thread only reads the
// Runtime's snapshot and state store and writes the route's SyncPosition atomics and metrics.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proxy/runtime/runtime.hpp"

namespace pgshift::migrate {

class LagMonitor {
 public:
  LagMonitor(std::shared_ptr<proxy::Runtime> runtime, std::string route);
  ~LagMonitor();  // stop()
  LagMonitor(const LagMonitor&) = delete;
  LagMonitor& operator=(const LagMonitor&) = delete;

  void start();
  void stop();  // wakes the thread and joins it (waits at most for one libpq call)

 private:
  void run();
  bool wait_for(std::chrono::milliseconds d);  // false when stopping

  std::shared_ptr<proxy::Runtime> runtime_;
  std::string route_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
};

// One monitor per route of the current config with sync.mode logical and a target. Routes
// added or switched to logical by a reload start with the next restart.
class LagMonitors {
 public:
  explicit LagMonitors(std::shared_ptr<proxy::Runtime> runtime);
  ~LagMonitors();
  void stop();

 private:
  std::vector<std::unique_ptr<LagMonitor>> monitors_;
};

}  // namespace pgshift::migrate
