#pragma once
// Holds new transactions while an operator pause is active (POST /v1/pause): sessions call
// wait_if_paused() at each transaction boundary, before they start the next transaction;
// open transactions are not affected. A pause always ends: by resume(), or by its own
// timeout, so a forgotten pause (or a crashed operator script) can never hang clients.
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
#include <map>
#include <memory>
#include <mutex>

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

  PauseGate() = default;
  PauseGate(const PauseGate&) = delete;
  PauseGate& operator=(const PauseGate&) = delete;

  // Starts a pause, or replaces the timeout of the current one, counted from now.
  // `timeout` must be within (0, kMaxTimeout]; the admin API validates it.
  Status pause(std::chrono::milliseconds timeout);
  // Ends the pause and releases every held transaction. Returns the status before.
  Status resume();
  Status status();

  // Fast path for the data path: one atomic load when not paused.
  bool maybe_paused() const { return paused_.load(std::memory_order_acquire); }

  // Returns at once when not paused; otherwise holds until resume, expiry or `deadline`.
  asio::awaitable<WaitResult> wait_if_paused(asio::any_io_executor executor,
                                             Clock::time_point deadline);

 private:
  struct Waiter;
  struct WaiterRef {
    std::weak_ptr<Waiter> waiter;
    asio::any_io_executor executor;  // where its timer lives; cancel() is posted there
  };
  // Requires mu_. Ends an expired pause; true while a pause is in force.
  bool active_locked(Clock::time_point now);
  void wake_all_locked();
  void end_locked(bool expired);

  std::atomic<bool> paused_{false};
  std::mutex mu_;
  bool active_ = false;
  Clock::time_point expires_at_{};
  std::uint64_t pause_id_ = 0;
  std::map<Waiter*, WaiterRef> waiters_;
};

}  // namespace pgshift::proxy
