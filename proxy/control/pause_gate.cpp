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

void PauseGate::update_flag_locked() {
  // seq_cst: see the header (the counter protocol of the barrier).
  paused_.store(active_ || !holds_.empty(), std::memory_order_seq_cst);
}

void PauseGate::end_locked(bool expired) {
  active_ = false;
  update_flag_locked();
  metrics().pause_active().Set(0);
  // Every registered waiter is alive: it unregisters (under mu_) before it is destroyed.
  // Waiters still held by their route's hold go back to waiting when they look.
  for (const auto& [ptr, ref] : waiters_) {
    ptr->released_by = expired ? WaitResult::expired : WaitResult::resumed;
  }
  wake_all_locked();
}

const PauseGate::Clock::time_point* PauseGate::hold_locked(std::string_view route,
                                                           Clock::time_point now) {
  bool expired_any = false;
  for (auto it = holds_.begin(); it != holds_.end();) {
    if (now < it->second) {
      ++it;
      continue;
    }
    log_warn("route hold expired: releasing held transactions (no commit or abort in time)",
             {f("route", it->first)});
    for (const auto& [ptr, ref] : waiters_) {
      if (ref.route == it->first) ptr->released_by = WaitResult::expired;
    }
    it = holds_.erase(it);
    expired_any = true;
  }
  if (expired_any) {
    update_flag_locked();
    wake_all_locked();
  }
  if (route.empty()) return nullptr;
  auto it = holds_.find(route);
  return it == holds_.end() ? nullptr : &it->second;
}

bool PauseGate::blocks(std::string_view route) {
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  const bool active = active_locked(now);
  return hold_locked(route, now) != nullptr || active;
}

std::shared_ptr<PauseGate::RouteCounter> PauseGate::counter(std::string_view route) {
  std::lock_guard lock(mu_);
  auto it = counters_.find(route);
  if (it == counters_.end()) {
    it = counters_.emplace(std::string(route), std::make_shared<RouteCounter>()).first;
  }
  return it->second;
}

std::int64_t PauseGate::hold_route(std::string_view route, std::chrono::milliseconds timeout) {
  timeout = std::clamp(timeout, std::chrono::milliseconds(1), kMaxTimeout);
  std::shared_ptr<RouteCounter> c;
  {
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    hold_locked({}, now);
    auto [it, fresh] = holds_.insert_or_assign(std::string(route), now + timeout);
    update_flag_locked();
    if (!fresh) wake_all_locked();  // held waiters re-arm their timers to the new expiry
    auto cit = counters_.find(route);
    if (cit != counters_.end()) c = cit->second;
  }
  log_info("route held: new transactions wait at their boundary",
           {f("route", route), f("timeout_ms", timeout.count())});
  return c ? c->open.load(std::memory_order_seq_cst) : 0;
}

bool PauseGate::release_route(std::string_view route) {
  std::lock_guard lock(mu_);
  auto it = holds_.find(route);
  if (it == holds_.end()) return false;
  holds_.erase(it);
  update_flag_locked();
  for (const auto& [ptr, ref] : waiters_) {
    if (ref.route == route) ptr->released_by = WaitResult::resumed;
  }
  wake_all_locked();
  log_info("route released: held transactions go on", {f("route", route)});
  return true;
}

bool PauseGate::route_held(std::string_view route) {
  std::lock_guard lock(mu_);
  return hold_locked(route, Clock::now()) != nullptr;
}

std::int64_t PauseGate::open_transactions(std::string_view route) {
  std::shared_ptr<RouteCounter> c;
  {
    std::lock_guard lock(mu_);
    auto it = counters_.find(route);
    if (it == counters_.end()) return 0;
    c = it->second;
  }
  return c->open.load(std::memory_order_seq_cst);
}

void PauseGate::set_backlog_probe(std::function<Backlog(std::string_view route)> probe) {
  std::lock_guard lock(mu_);
  backlog_probe_ = std::move(probe);
}

PauseGate::Drain PauseGate::drain_state(std::string_view route) {
  Drain d;
  d.open = open_transactions(route);
  std::function<Backlog(std::string_view)> probe;
  {
    std::lock_guard lock(mu_);
    probe = backlog_probe_;
  }
  if (probe) {
    auto b = probe(route);
    d.pending_replays = b.pending;
    d.refusal = std::move(b.refusal);
  }
  return d;
}

std::string PauseGate::Drain::describe() const {
  std::string s;
  if (open > 0) s = std::to_string(open) + " transactions still open";
  if (pending_replays > 0) {
    s += (s.empty() ? "" : ", ") + std::to_string(pending_replays) +
         " committed transactions not yet replayed by the mirror";
  }
  if (!refusal.empty()) s += (s.empty() ? "" : ", ") + refusal;
  return s;
}

std::size_t PauseGate::waiting(std::string_view route) {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [ptr, ref] : waiters_) n += ref.route == route ? 1 : 0;
  return n;
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
  update_flag_locked();
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
                                                                 Clock::time_point deadline,
                                                                 std::string route) {
  if (!maybe_paused()) co_return WaitResult::not_paused;
  auto waiter = std::make_shared<Waiter>(executor);
  const auto started = Clock::now();
  // The earliest moment something may change for this waiter, or null when nothing holds it.
  auto next_wake = [this, &route, deadline](Clock::time_point now) {
    std::optional<Clock::time_point> until;
    const bool active = active_locked(now);
    const auto* hold = hold_locked(route, now);
    if (active) until = expires_at_;
    if (hold) until = until ? std::min(*until, *hold) : *hold;
    if (until) until = std::min(*until, deadline);
    return until;
  };
  {
    std::lock_guard lock(mu_);
    const auto until = next_wake(started);
    if (!until) co_return WaitResult::not_paused;
    if (started >= deadline) co_return WaitResult::deadline;
    waiters_.emplace(waiter.get(), WaiterRef{waiter, executor, route});
    waiter->timer.expires_at(*until);
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
    // Ends on expiry/deadline, or early (operation_aborted) when resume(), release_route()
    // or a new pause()/hold cancels it; the state under the lock decides which.
    co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    std::lock_guard lock(mu_);
    const auto now = Clock::now();
    const auto until = next_wake(now);
    if (!until) {
      result = waiter->released_by.value_or(WaitResult::resumed);
    } else if (now >= deadline) {
      result = WaitResult::deadline;
    } else {
      waiter->released_by.reset();  // e.g. the pause ended but the route is still held
      waiter->timer.expires_at(*until);
      continue;
    }
    break;
  }
  metrics().pause_wait().Observe(seconds(Clock::now() - started));
  co_return result;
}

}  // namespace pgshift::proxy
