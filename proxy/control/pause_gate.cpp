#include "proxy/control/pause_gate.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

template <class F>
struct ScopeExit {
  F f;
  ~ScopeExit() { f(); }
};
template <class F>
ScopeExit(F) -> ScopeExit<F>;

}  // namespace

struct PauseGate::Waiter {
  explicit Waiter(asio::any_io_executor ex) : timer(std::move(ex)) {}
  asio::steady_timer timer;               // touched only on its executor
  std::optional<WaitResult> released_by;  // guarded by PauseGate::mu_
};

bool PauseGate::active_locked(Clock::time_point now) {
  if (active_ && now >= expires_at_) {
    // Noticed by whoever looks first (a waiter's timer fires exactly at expires_at_).
    log_warn("pause expired: releasing held transactions (no resume before the timeout)",
             {f("pause_id", pause_id_), f("waiting", waiters_.size())});
    metrics().pause_expirations().Increment();
    end_locked(true);
  }
  return active_;
}

void PauseGate::wake_all_locked() {
  for (const auto& [ptr, ref] : waiters_) {
    // Runs on the waiter's own thread; the waiter may be gone by then, hence weak_ptr.
    asio::post(ref.executor, [w = ref.waiter]() {
      if (auto waiter = w.lock()) waiter->timer.cancel();
    });
  }
}

void PauseGate::end_locked(bool expired) {
  active_ = false;
  paused_.store(false, std::memory_order_release);
  metrics().pause_active().Set(0);
  // Every registered waiter is alive: it unregisters (under mu_) before it is destroyed.
  for (const auto& [ptr, ref] : waiters_) {
    ptr->released_by = expired ? WaitResult::expired : WaitResult::resumed;
  }
  wake_all_locked();
}

PauseGate::Status PauseGate::pause(std::chrono::milliseconds timeout) {
  timeout = std::clamp(timeout, std::chrono::milliseconds(1), kMaxTimeout);
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  active_locked(now);
  const bool extending = active_;
  active_ = true;
  expires_at_ = now + timeout;
  ++pause_id_;
  paused_.store(true, std::memory_order_release);
  metrics().pause_active().Set(1);
  if (!extending) metrics().pauses_total().Increment();
  // Held waiters re-arm their timers to the new expiry (it may be earlier than the old one).
  if (extending) wake_all_locked();
  return Status{true, timeout, waiters_.size(), pause_id_};
}

PauseGate::Status PauseGate::resume() {
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  Status before{active_locked(now), {}, waiters_.size(), pause_id_};
  if (before.paused) {
    before.remaining = std::chrono::ceil<std::chrono::milliseconds>(expires_at_ - now);
    end_locked(false);
  }
  return before;
}

PauseGate::Status PauseGate::status() {
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  Status s{active_locked(now), {}, waiters_.size(), pause_id_};
  if (s.paused) s.remaining = std::chrono::ceil<std::chrono::milliseconds>(expires_at_ - now);
  return s;
}

asio::awaitable<PauseGate::WaitResult> PauseGate::wait_if_paused(asio::any_io_executor executor,
                                                                 Clock::time_point deadline) {
  if (!maybe_paused()) co_return WaitResult::not_paused;
  auto waiter = std::make_shared<Waiter>(executor);
  const auto started = Clock::now();
  {
    std::lock_guard lock(mu_);
    if (!active_locked(started)) co_return WaitResult::not_paused;
    if (started >= deadline) co_return WaitResult::deadline;
    waiters_.emplace(waiter.get(), WaiterRef{waiter, executor});
    waiter->timer.expires_at(std::min(expires_at_, deadline));
  }
  metrics().pause_waiting().Increment();
  // Also runs when the coroutine is destroyed while suspended (session torn down, io_context
  // destroyed at exit), so the map never holds a dead waiter.
  ScopeExit unregister{[this, w = waiter.get()]() {
    std::lock_guard lock(mu_);
    waiters_.erase(w);
    metrics().pause_waiting().Decrement();
  }};
  WaitResult result = WaitResult::deadline;
  for (;;) {
    // Ends on expiry/deadline, or early (operation_aborted) when resume() or a new pause()
    // cancels it; the state under the lock decides which.
    co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    const bool active = active_locked(now);
    if (waiter->released_by) {
      result = *waiter->released_by;
    } else if (!active) {
      result = WaitResult::resumed;  // unreachable: ending a pause marks every waiter
    } else if (now >= deadline) {
      result = WaitResult::deadline;
    } else {
      waiter->timer.expires_at(std::min(expires_at_, deadline));
      continue;
    }
    break;
  }
  metrics().pause_wait().Observe(seconds(Clock::now() - started));
  co_return result;
}

}  // namespace pgshift::proxy
