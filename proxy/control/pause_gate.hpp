#pragma once
// Holds new transactions while an operator pause is active (POST /v1/pause), or, for one
// route, while the fleet barrier holds it (docs/control-plane.md): sessions call
// wait_if_paused() at each transaction boundary, before they start the next transaction;
// open transactions are not affected. A pause or a route hold always ends: by resume() /
// release_route(), or by its own timeout, so a forgotten pause (or a crashed coordinator)
// can never hang clients.
//
// Open transactions per route: a session adds 1 to its route's counter (counters()) when it
// starts a transaction and takes it away when the transaction ends, so the barrier can wait
// until the route has none. The increment is seq_cst and so is the load of maybe_paused()
// after it, matching hold_route()'s store before it reads the counter: either the session
// sees the hold, or the holder sees the session's transaction (on x86 both are the plain
// lock-xadd and mov of a relaxed increment and load).
//
// Thread-safety: every member may be called from any thread. Waiters may live on any
// io_context; each waits on a steady_timer bound to its own executor, and resume() wakes it
// by posting the timer's cancel() to that executor. The executor passed to wait_if_paused()
// must be single-threaded (an io_context run by one thread, as pgshift's are, or a strand).
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace pgshift::proxy {

namespace asio = boost::asio;

class PauseGate {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kDefaultTimeout{30000};
  static constexpr std::chrono::milliseconds kMaxTimeout{300000};

  struct Status {
    bool paused = false;
    std::chrono::milliseconds remaining{0};  // until the pause expires by itself
    std::size_t waiting = 0;                 // transactions held right now
    std::uint64_t pause_id = 0;              // increases with every pause() call
  };

  enum class WaitResult {
    not_paused,  // returned at once
    resumed,     // held, then released by resume()
    expired,     // held, then released by the pause's timeout
    deadline,    // the caller's deadline passed while still paused: caller decides
  };

  // A route's open-transaction counter; the address is stable for the gate's lifetime.
  struct RouteCounter {
    std::atomic<std::int64_t> open{0};
  };

  PauseGate() = default;
  PauseGate(const PauseGate&) = delete;
  PauseGate& operator=(const PauseGate&) = delete;

  // Starts a pause, or replaces the timeout of the current one, counted from now.
  // `timeout` must be within (0, kMaxTimeout]; the admin API validates it.
  Status pause(std::chrono::milliseconds timeout);
  // Ends the pause and releases every held transaction. Returns the status before.
  Status resume();
  Status status();

  // Fast path for the data path: one atomic load when nothing is paused or held.
  bool maybe_paused() const { return paused_.load(std::memory_order_seq_cst); }
  // True while a new transaction of `route` must wait (pause, or a hold of the route).
  bool blocks(std::string_view route);

  // Returns at once when not paused; otherwise holds until resume, expiry or `deadline`.
  // With a route, also while that route is held (other routes' holds do not apply).
  asio::awaitable<WaitResult> wait_if_paused(asio::any_io_executor executor,
                                             Clock::time_point deadline, std::string route = {});

  // ---- the fleet barrier's per-route hold ----
  std::shared_ptr<RouteCounter> counter(std::string_view route);
  // Holds new transactions of `route` until release_route() or `timeout` (counted from now;
  // a second call replaces it). Returns the transactions of the route open right now.
  std::int64_t hold_route(std::string_view route, std::chrono::milliseconds timeout);
  // Releases the route's held transactions; false when it was not held.
  bool release_route(std::string_view route);
  bool route_held(std::string_view route);
  std::int64_t open_transactions(std::string_view route);
  std::size_t waiting(std::string_view route);

  // What else a hold waits for besides the route's open transactions: the transactions that
  // committed but are not yet replayed by the route's mirror (sync.mode mirror), and a
  // reason to refuse the hold at once (the mirror stopped). Set once by the app, before the
  // control thread starts; called on the control or a coordinator thread.
  struct Backlog {
    std::uint64_t pending = 0;
    std::string refusal;
  };
  void set_backlog_probe(std::function<Backlog(std::string_view route)> probe);
  // The route as the fleet barrier sees it: drained once nothing is open and nothing pending.
  struct Drain {
    std::int64_t open = 0;
    std::uint64_t pending_replays = 0;
    std::string refusal;
    bool drained() const { return open == 0 && pending_replays == 0 && refusal.empty(); }
    // "2 transactions still open, 5 committed transactions not yet mirrored"
    std::string describe() const;
  };
  Drain drain_state(std::string_view route);

 private:
  struct Waiter;
  struct WaiterRef {
    std::weak_ptr<Waiter> waiter;
    asio::any_io_executor executor;  // where its timer lives; cancel() is posted there
    std::string route;               // empty: waits for the pause only
  };
  // Requires mu_. Ends an expired pause; true while a pause is in force.
  bool active_locked(Clock::time_point now);
  // Requires mu_. Ends expired route holds; the hold of `route` in force, if any.
  const Clock::time_point* hold_locked(std::string_view route, Clock::time_point now);
  void update_flag_locked();
  void wake_all_locked();
  void end_locked(bool expired);

  std::atomic<bool> paused_{false};
  std::mutex mu_;
  bool active_ = false;
  Clock::time_point expires_at_{};
  std::uint64_t pause_id_ = 0;
  std::map<Waiter*, WaiterRef> waiters_;
  std::map<std::string, Clock::time_point, std::less<>> holds_;  // route -> expiry
  std::map<std::string, std::shared_ptr<RouteCounter>, std::less<>> counters_;
  std::function<Backlog(std::string_view)> backlog_probe_;  // immutable once set
};

}  // namespace pgshift::proxy
