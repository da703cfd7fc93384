#pragma once
// The StateStore of a fleet member (control: target or a control database; docs/
// control-plane.md): the routes' state lives in schema pgshift of the control database and
// one control thread per sidecar (a std::thread with a blocking pgclient::Connection, never
// an I/O thread) keeps this sidecar in step with it:
//   - LISTEN pgshift_state, and a poll every control.poll_ms, so a lost notification costs
//     at most one poll; a changed epoch is published to the data path at once (sessions
//     pick it up at their next transaction boundary);
//   - a heartbeat every second: the member row with the epoch applied per route;
//   - changes from the admin API (change()) are queued to the thread and answered from it:
//     compare-and-set on the epoch in one transaction, an audit row, NOTIFY;
//   - the member side of the fleet barrier (pg_member_barrier.cpp): hold the route in the
//     pause gate, wait for its open transactions to end, acknowledge, release on commit,
//     abort or deadline; clean up operations whose coordinator died.
// While the control database cannot be reached, the data path keeps its last snapshot,
// pgshift_control_connected is 0 and change() answers `unavailable` at once.
//
// Thread-safety: every public member may be called from any thread.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "proxy/control/pause_gate.hpp"
#include "proxy/control/pg_schema.hpp"
#include "proxy/control/state_store.hpp"
#include "proxy/pgclient/connection.hpp"

namespace pgshift::proxy {

class PgStateStore : public StateStore {
 public:
  struct Options {
    pgclient::ConnInfo conn;
    std::chrono::milliseconds poll{1000};
    std::chrono::milliseconds member_timeout{10000};
    std::chrono::milliseconds heartbeat{1000};
    std::string member_id;  // empty: $POD_NAME or the host name, plus a random suffix
    std::string address;    // "listen host:port, admin host:port", for `ctl members`
  };

  PgStateStore(Options options, std::shared_ptr<PauseGate> gate);
  ~PgStateStore() override;  // stop()

  // Startup: publishes every route of `cfg` at its initial state, then starts the control
  // thread, which replaces them with the control database's as soon as it can connect.
  // start() waits up to `wait` for that first read, so a sidecar that can reach the control
  // database starts with the fleet's state; one whose first attempt fails starts serving at
  // once (and says so), and the thread keeps trying every second.
  void load(const config::Config& cfg) override;
  void start(std::chrono::milliseconds wait);
  void reconcile(const config::Config& cfg) override;
  // Stops the thread; `leave` deletes the member row (SIGTERM) first.
  void stop(bool leave = true);
  void close() override { stop(true); }

  void change(ChangeRequest request, Done done) override;
  void refresh_soon() override { reread_ = true; }  // the thread waits at most kIdleWait
  ControlStatus control_status() const override;
  std::vector<MemberView> members() const override;

  const std::string& member_id() const { return opt_.member_id; }
  static std::string default_member_id();

 private:
  struct Job {
    ChangeRequest request;
    Done done;
  };
  // A barrier operation this member takes part in (pg_member_barrier.cpp).
  struct Hold {
    std::uint64_t op_epoch = 0;
    std::chrono::steady_clock::time_point drain_deadline;
    bool acked = false;
  };

  void run();
  bool connect_once();
  void disconnected(const std::string& why);
  void loop_once(bool& notified);
  void run_jobs();
  StateChangeResult apply_change(const ChangeRequest& request);
  void heartbeat();
  void leave_fleet();
  // Reads every route and the members; publishes a new snapshot when an epoch moved.
  void refresh();
  void refresh_members();
  void publish_rows(const std::map<std::string, pgcontrol::RouteRow, std::less<>>& rows);
  // pg_member_barrier.cpp
  void follow_operation(const std::string& route, const pgcontrol::RouteRow& row);
  void barrier_step();
  void release(const std::string& route, std::string_view why);
  std::vector<std::string> route_names() const;

  Options opt_;
  std::shared_ptr<PauseGate> gate_;
  std::thread thread_;
  pgclient::Connection conn_;                       // control thread only
  bool have_conn_ = false;                          // control thread only
  std::map<std::string, Hold, std::less<>> holds_;  // control thread only
  std::chrono::steady_clock::time_point next_heartbeat_{}, next_poll_{}, next_connect_{};

  std::atomic<bool> reread_{false};  // a reload or a session's fence error: read at once
  std::mutex publish_mu_;            // serializes read-modify-publish of the snapshot
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool leave_ = true;
  bool first_read_done_ = false;
  bool first_attempt_done_ = false;  // a connection attempt failed (start() waits no more)
  bool connected_ = false;
  std::string last_error_;
  std::deque<Job> jobs_;
  std::map<std::string, routing::MigrationState, std::less<>> served_;  // route -> initial
  // Routes a reload removed, with the state last served (mu_): a reload that restores one
  // serves it again at once instead of the configured initial state.
  std::map<std::string, routing::MigrationState, std::less<>> retired_;
  std::vector<MemberView> members_;
};

}  // namespace pgshift::proxy
