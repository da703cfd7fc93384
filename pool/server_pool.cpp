#include "pool/server_pool.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <optional>
#include <utility>

#include "pool/errc.hpp"
#include "pool/server_pool_check.hpp"
#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"
#include "wire/errc.hpp"
#include "wire/message_types.hpp"

namespace pgshift::pool {
namespace {

using detail::use_tuple;
using std::chrono::milliseconds;

bool same_settings(const config::Pool& a, const config::Pool& b) {
  return a.mode == b.mode && a.size == b.size && a.min_idle == b.min_idle &&
         a.reserve == b.reserve && a.max_client_connections == b.max_client_connections &&
         a.query_wait_timeout == b.query_wait_timeout &&
         a.server_idle_timeout == b.server_idle_timeout && a.server_lifetime == b.server_lifetime &&
         a.prepared_statement_cache_size == b.prepared_statement_cache_size;
}

asio::awaitable<error_code> say_goodbye(ServerConnection& conn) {
  wire::Bytes out;
  wire::terminate(out);
  if (auto ec = co_await conn.stream.write_all(out)) co_return ec;
  std::array<std::uint8_t, 512> sink{};
  for (;;) {
    auto [ec, n] = co_await conn.stream.read_some(sink);
    if (ec) co_return ec;
  }
}

}  // namespace

// ---- PooledConnection ----

PooledConnection& PooledConnection::operator=(PooledConnection&& other) noexcept {
  if (this != &other) {
    if (conn_) release(ReleaseState::dirty);
    pool_ = std::move(other.pool_);
    conn_ = std::move(other.conn_);
  }
  return *this;
}

PooledConnection::~PooledConnection() {
  if (conn_) release(ReleaseState::dirty);
}

void PooledConnection::release(ReleaseState state) noexcept {
  if (!conn_ || !pool_) {
    conn_.reset();
    pool_.reset();
    return;
  }
  auto pool = pool_;  // keeps the pool alive through its own release()
  pool->release(*this, state);
}

// ---- waiting ----

struct ServerPool::Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;
  std::unique_ptr<ServerConnection> conn;  // handed over by place()
  bool woken = false;                      // by place() (conn set), a freed slot, or close()
  bool queued = false;                     // in waiters_
  std::optional<AcquireError> failure;     // set by fail_waiters(): give up with this error
};

// Counts an acquire as waiting (here and in PoolShared) while it lives, and on the way out,
// whichever way that is (return, exception, coroutine frame destroyed at shutdown), takes the
// Waiter out of the queue and passes on whatever it was given but did not use.
struct ServerPool::WaitRegistration {
  WaitRegistration(ServerPool& p, Waiter& w) : pool(p), waiter(w) {
    pool.waiting_.fetch_add(1);
    pool.shared_->add_waiter();
  }
  ~WaitRegistration() {
    if (waiter.queued) {
      std::erase(pool.waiters_, &waiter);
      waiter.queued = false;
    }
    pool.waiting_.fetch_sub(1);
    pool.shared_->remove_waiter();
    if (waiter.conn) {
      pool.place(std::move(waiter.conn));
    } else if (waiter.woken) {
      // Woken for a freed slot it will not use: the next waiter may.
      pool.after_slot_freed();
    }
  }
  WaitRegistration(const WaitRegistration&) = delete;
  WaitRegistration& operator=(const WaitRegistration&) = delete;

  ServerPool& pool;
  Waiter& waiter;
};

// The state of one acquire() past the idle list (wait_or_connect): its limits and, once it
// waits, its place in the queue.
struct ServerPool::AcquireWait {
  AcquireWait(AcquireLimits l, milliseconds rebalance_after)
      : limits(l),
        rebalance_at(l.start),  // ask the other threads for an idle connection at once
        rebalance_step(std::max(rebalance_after, milliseconds(1))) {}

  const AcquireLimits limits;
  Clock::time_point rebalance_at;
  milliseconds rebalance_step;
  bool keep_place = false;  // woken for a slot that was gone: back to the head of the queue
  std::optional<Waiter> waiter;
  std::optional<WaitRegistration> registration;  // declared after waiter: destroyed first
};

// ---- ServerPool ----

std::shared_ptr<ServerPool> ServerPool::create(asio::any_io_executor executor,
                                               std::shared_ptr<PoolShared> shared,
                                               std::shared_ptr<const UpstreamParams> params,
                                               const config::Pool& settings,
                                               ServerPoolOptions options) {
  auto pool = std::make_shared<ServerPool>(Private{}, executor, shared, std::move(params), settings,
                                           options);
  shared->attach(pool, std::move(executor));
  return pool;
}

ServerPool::ServerPool(Private, asio::any_io_executor executor, std::shared_ptr<PoolShared> shared,
                       std::shared_ptr<const UpstreamParams> params, const config::Pool& settings,
                       ServerPoolOptions options)
    : executor_(std::move(executor)),
      shared_(std::move(shared)),
      params_(std::move(params)),
      settings_(settings),
      options_(options),
      rng_(static_cast<std::minstd_rand::result_type>(
          std::chrono::steady_clock::now().time_since_epoch().count() ^
          reinterpret_cast<std::uintptr_t>(this))) {
  shared_->configure(settings_);
}

ServerPool::~ServerPool() {
  // No waiter, active connection or pool coroutine can exist here: each holds a shared_ptr
  // to the pool. Only idle connections remain; close them without a goodbye (no coroutine
  // can outlive us) and hand their slots on.
  const int freed = static_cast<int>(idle_.size());
  for (auto& entry : idle_) {
    entry.conn->stream.close();
    counters_.closed.add(1);
    shared_->return_slot();
  }
  gauges_.idle.add(-static_cast<std::int64_t>(idle_.size()));
  idle_.clear();
  shared_->detach(this, local_stats());
  if (freed > 0 && shared_->waiters() > 0) shared_->wake_waiting_thread(this);
}

void ServerPool::configure(std::shared_ptr<const UpstreamParams> params,
                           const config::Pool& settings) {
  if (params && params != params_ && !(params_ && *params == *params_)) params_ = std::move(params);
  if (!same_settings(settings, settings_)) {
    settings_ = settings;
    shared_->configure(settings);
  }
}

asio::awaitable<PooledConnection> ServerPool::acquire(AcquireError& error, AcquireOptions options) {
  auto self = shared_from_this();  // first local: destroyed last
  error = AcquireError{};
  counters_.acquires.add(1);
  const AcquireLimits limits = acquire_limits(Clock::now());

  PooledConnection result;
  bool at_once = true;  // served from the idle list without waiting or connecting
  bool cancelled = false;
  try {
    if (closed_) {
      fail_wait(error, errc::pool_closed);
    } else {
      // The fast path: this thread's idle list, in this frame. Waiting and connecting are in
      // wait_or_connect's own frame, made only after a miss.
      if (!idle_.empty()) result = co_await take_idle();
      if (!result) {
        at_once = false;
        result = co_await wait_or_connect(limits, options, error, cancelled);
      }
    }
  } catch (...) {
    // Only cancellation throws here (an await after the caller's cancellation signal).
    cancelled = true;
  }
  if (cancelled) {
    if (result) result.release(ReleaseState::clean);
    error = AcquireError{};
    error.ec = asio::error::operation_aborted;
    error.message = "cancelled while waiting for a server connection";
    error.sqlstate = "57014";
    result = PooledConnection{};
  }
  if (!at_once) {
    const auto waited =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - limits.start);
    counters_.wait_us.add(waited.count());
  }
  if (error.timed_out) counters_.wait_timeouts.add(1);
  co_return result;
}

ServerPool::AcquireLimits ServerPool::acquire_limits(Clock::time_point start) const {
  const milliseconds wait_limit = settings_.query_wait_timeout;
  AcquireLimits limits{start, Clock::time_point::max(), Clock::time_point::max()};
  if (wait_limit.count() > 0) limits.deadline = start + wait_limit;
  if (settings_.reserve > 0) {
    limits.reserve_at =
        start + (wait_limit.count() > 0 ? wait_limit / 2 : options_.reserve_after_unbounded);
  }
  return limits;
}

asio::awaitable<PooledConnection> ServerPool::wait_or_connect(AcquireLimits limits,
                                                              AcquireOptions options,
                                                              AcquireError& error,
                                                              bool& cancelled) {
  AcquireWait wait(limits, options_.rebalance_after);
  PooledConnection result;
  for (;;) {
    const auto now = Clock::now();
    const bool allow_reserve = now >= limits.reserve_at;
    if (!wait.registration) {
      if (shared_->try_take_slot(allow_reserve)) {
        co_return co_await open_for_client(limits.deadline, options, error);
      }
      wait.waiter.emplace(executor_);
      wait.registration.emplace(*this, *wait.waiter);
      counters_.waits.add(1);
    }
    // Counted as a waiter now: look again, so that a slot freed on another thread between
    // the first look and the count is not missed (see PoolShared::add_waiter).
    if (shared_->try_take_slot(allow_reserve)) {
      wait.registration.reset();
      co_return co_await open_for_client(limits.deadline, options, error);
    }
    if (now >= limits.deadline) {
      fail_wait(error, errc::wait_timeout);
      co_return PooledConnection{};
    }
    queue_waiter(wait, now, allow_reserve);
    auto [ec] = co_await wait.waiter->timer.async_wait(use_tuple);
    const WakeResult woken = take_wake(wait, ec, result, error);
    if (woken == WakeResult::cancelled) cancelled = true;
    if (woken != WakeResult::look_again) co_return result;
    // Woken for a slot, or at a wake point (reserve, rebalance, deadline): look again.
    if (closed_) {
      fail_wait(error, errc::pool_closed);
      co_return PooledConnection{};
    }
    if (!idle_.empty()) {
      result = co_await take_idle();
      if (result) co_return result;
    }
  }
}

void ServerPool::queue_waiter(AcquireWait& wait, Clock::time_point now, bool allow_reserve) {
  if (now >= wait.rebalance_at) {
    // Another thread may have an idle connection: it hands one over (to whichever thread
    // waits; we hear of it through place()). Asked again later in case that one went
    // elsewhere, or was taken there first.
    shared_->request_handover(this);
    if (wait.rebalance_at != wait.limits.start) {
      wait.rebalance_step = std::min(wait.rebalance_step * 2, milliseconds(1000));
    }
    wait.rebalance_at = now + wait.rebalance_step;
  }
  auto wake_at = std::min(wait.limits.deadline, wait.rebalance_at);
  if (!allow_reserve) wake_at = std::min(wake_at, wait.limits.reserve_at);

  Waiter& waiter = *wait.waiter;
  waiter.woken = false;
  waiter.queued = true;
  if (wait.keep_place) {
    waiters_.push_front(&waiter);
  } else {
    waiters_.push_back(&waiter);
  }
  wait.keep_place = false;
  waiter.timer.expires_at(wake_at);
}

ServerPool::WakeResult ServerPool::take_wake(AcquireWait& wait, error_code ec,
                                             PooledConnection& result, AcquireError& error) {
  Waiter& waiter = *wait.waiter;
  if (waiter.queued) {
    std::erase(waiters_, &waiter);
    waiter.queued = false;
  }
  if (waiter.conn) {
    gauges_.active.add(1);
    result = PooledConnection(shared_from_this(), std::move(waiter.conn));
    waiter.woken = false;
    return WakeResult::done;
  }
  if (waiter.failure) {  // another client's connect failed: so would ours
    error = std::move(*waiter.failure);
    waiter.failure.reset();
    return WakeResult::done;
  }
  if (waiter.woken) {
    waiter.woken = false;  // the wake is ours to use: retry idle list and slot
    wait.keep_place = true;
    return WakeResult::look_again;
  }
  if (ec == asio::error::operation_aborted) {
    return WakeResult::cancelled;  // the caller cancelled us (not a wake, which sets woken)
  }
  return WakeResult::look_again;
}

PooledConnection ServerPool::pop_idle(bool& needs_check, bool stop_at_check, bool probe) {
  needs_check = false;
  while (!idle_.empty()) {
    const auto now = Clock::now();
    if (stop_at_check && now - idle_.back().since >= options_.health_check_after) break;
    IdleEntry entry = std::move(idle_.back());
    idle_.pop_back();
    gauges_.idle.add(-1);
    unwatch(*entry.conn);
    if (expired(*entry.conn, now)) {
      retire(std::move(entry.conn), true);
      continue;
    }
    if ((probe || entry.conn->stream.is_tls()) && !is_connection_alive(*entry.conn)) {
      counters_.dead.add(1);
      retire(std::move(entry.conn), false);
      continue;
    }
    gauges_.active.add(1);
    needs_check = now - entry.since >= options_.health_check_after;
    return PooledConnection(shared_from_this(), std::move(entry.conn));
  }
  return PooledConnection{};
}

asio::awaitable<PooledConnection> ServerPool::take_idle() {
  for (;;) {
    bool needs_check = false;
    // The handle owns the connection: a cancelled health check releases it as dirty.
    // Off the hot path (try_acquire_now): the probe costs little here, and covers what the
    // idle watch cannot see (bytes that came with the connection's last read).
    PooledConnection handle = pop_idle(needs_check, false, true);
    if (!handle || !needs_check) co_return handle;
    counters_.health_checks.add(1);
    auto check = co_await run_simple_command(*handle, "SELECT 1", options_.check_timeout);
    if (check.ok()) co_return handle;
    counters_.health_check_failures.add(1);
    handle.release(ReleaseState::dirty);
  }
}

PooledConnection ServerPool::try_acquire_now() {
  if (closed_ || idle_.empty()) return PooledConnection{};
  bool needs_check = false;
  PooledConnection handle = pop_idle(needs_check, true, false);
  if (handle) counters_.acquires.add(1);
  return handle;
}

void ServerPool::release(PooledConnection& conn, ReleaseState state) noexcept {
  auto keep = std::move(conn.pool_);  // may be the last reference to this pool
  std::unique_ptr<ServerConnection> c = std::move(conn.conn_);
  if (!c) return;
  if (keep && keep.get() != this) {  // released through the wrong pool: send it home
    conn.pool_ = keep;
    conn.conn_ = std::move(c);
    keep->release(conn, state);
    return;
  }
  gauges_.active.add(-1);
  const bool clean = state == ReleaseState::clean;
  if (clean && !closed_ && c->stream.is_open() && c->txn_status == wire::txn_status::idle &&
      !c->no_reuse && !expired(*c, Clock::now())) {
    place(std::move(c));
  } else {
    // A clean connection gets a goodbye; a dirty one may be mid-message, so it is cut.
    retire(std::move(c), clean);
  }
}

void ServerPool::place(std::unique_ptr<ServerConnection> conn, bool may_hand_over,
                       Clock::time_point since) {
  if (closed_) {
    retire(std::move(conn), true);
    return;
  }
  if (!waiters_.empty()) {
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    w->queued = false;
    w->conn = std::move(conn);
    w->woken = true;
    w->timer.cancel();
    return;
  }
  // Over size: reserve connections (or a size lowered by a reload) are not kept.
  if (keeps_no_idle(params_->database) || shared_->total() > shared_->size()) {
    retire(std::move(conn), true);
    return;
  }
  // Nobody waits here but clients wait on another thread: the connection goes there. (The
  // atomic read is all the hot path pays; the registry's mutex only when someone waits.)
  if (may_hand_over && shared_->waiters() > waiting_.load() && hand_over(conn, since)) return;
  idle_.push_back({std::move(conn), since});
  gauges_.idle.add(1);
  watch(*idle_.back().conn);
}

void ServerPool::retire(std::unique_ptr<ServerConnection> conn, bool graceful) {
  if (graceful && conn->stream.is_open()) {
    gauges_.closing.add(1);
    asio::co_spawn(executor_, close_gracefully(shared_from_this(), std::move(conn)),
                   asio::detached);
    return;
  }
  conn->stream.close();
  conn.reset();
  counters_.closed.add(1);
  shared_->return_slot();
  after_slot_freed();
}

asio::awaitable<void> ServerPool::close_gracefully(std::shared_ptr<ServerPool> self,
                                                   std::unique_ptr<ServerConnection> conn) {
  try {
    error_code why;
    co_await detail::with_timeout(say_goodbye(*conn), self->options_.close_timeout, why);
  } catch (...) {
    // Cancelled: close right away.
  }
  conn->stream.close();
  conn.reset();
  self->gauges_.closing.add(-1);
  self->counters_.closed.add(1);
  self->shared_->return_slot();
  self->after_slot_freed();
}

void ServerPool::fail_waiters(const AcquireError& error) {
  while (!waiters_.empty()) {
    Waiter* w = waiters_.front();
    waiters_.pop_front();
    w->queued = false;
    w->failure = error;
    w->timer.cancel();
  }
}

void ServerPool::wake_first_waiter() {
  if (waiters_.empty()) return;
  Waiter* w = waiters_.front();
  waiters_.pop_front();
  w->queued = false;
  w->woken = true;
  w->timer.cancel();
}

void ServerPool::maintain() {
  if (closed_) return;
  const auto now = Clock::now();
  const std::size_t share = min_idle_share();
  int excess = shared_->total() - shared_->size();
  const milliseconds idle_timeout = settings_.server_idle_timeout;
  for (auto it = idle_.begin(); it != idle_.end();) {
    bool drop = false;
    bool graceful = true;
    if (expired(*it->conn, now)) {
      drop = true;
    } else if (!is_connection_alive(*it->conn)) {
      counters_.dead.add(1);
      drop = true;
      graceful = false;
    } else if (idle_timeout.count() > 0 && now - it->since >= idle_timeout &&
               idle_.size() > share) {
      drop = true;
    } else if (excess > 0) {
      drop = true;
      --excess;
    }
    if (!drop) {
      ++it;
      continue;
    }
    auto conn = std::move(it->conn);
    it = idle_.erase(it);
    gauges_.idle.add(-1);
    unwatch(*conn);
    retire(std::move(conn), graceful);
  }

  // min_idle: clients waiting get connections their own way; after a failure, back off.
  if (!waiters_.empty() || now < open_idle_not_before_ || keeps_no_idle(params_->database)) {
    return;
  }
  while (idle_.size() + static_cast<std::size_t>(opening_idle_) < share) {
    if (!shared_->try_take_slot(false)) break;
    ++opening_idle_;
    gauges_.connecting.add(1);
    asio::co_spawn(executor_, open_idle(shared_from_this()), asio::detached);
  }
}

asio::awaitable<void> ServerPool::open_idle(std::shared_ptr<ServerPool> self) {
  ConnectError error;
  std::unique_ptr<ServerConnection> conn;
  try {
    const auto params = self->params_;
    conn = co_await connect_upstream(*params, error);
  } catch (...) {
    conn.reset();
  }
  --self->opening_idle_;
  self->gauges_.connecting.add(-1);
  if (!conn) {
    self->counters_.connect_failures.add(1);
    self->last_connect_error_ = error.message;
    auto& backoff = self->open_idle_backoff_;
    backoff = backoff.count() == 0 ? self->options_.backoff_initial
                                   : std::min(backoff * 2, self->options_.backoff_max);
    self->open_idle_not_before_ = Clock::now() + self->jittered(backoff);
    self->shared_->return_slot();
    self->after_slot_freed();
    co_return;
  }
  self->counters_.connects.add(1);
  self->last_connect_error_.clear();
  self->open_idle_backoff_ = milliseconds(0);
  self->place(std::move(conn));
}

void ServerPool::close() {
  if (closed_) return;
  closed_ = true;
  for (auto* timer : backoff_timers_) timer->cancel();
  while (!waiters_.empty()) wake_first_waiter();  // each sees closed_ and fails
  drop_idle();
}

PoolStats ServerPool::local_stats() const {
  PoolStats s;
  s.idle = gauges_.idle.get();
  s.active = gauges_.active.get();
  s.waiting = waiting_.load();
  s.connecting = gauges_.connecting.get();
  s.closing = gauges_.closing.get();
  s.acquires = counters_.acquires.get();
  s.waits = counters_.waits.get();
  s.connects = counters_.connects.get();
  s.handovers = counters_.handovers.get();
  s.connect_failures = counters_.connect_failures.get();
  s.wait_timeouts = counters_.wait_timeouts.get();
  s.closed = counters_.closed.get();
  s.dead = counters_.dead.get();
  s.health_checks = counters_.health_checks.get();
  s.health_check_failures = counters_.health_check_failures.get();
  s.resets = counters_.resets.get();
  s.reset_failures = counters_.reset_failures.get();
  s.total_wait_time = std::chrono::microseconds(counters_.wait_us.get());
  return s;
}

bool ServerPool::expired(const ServerConnection& conn, Clock::time_point now) const {
  const milliseconds lifetime = settings_.server_lifetime;
  return lifetime.count() > 0 && now - conn.created_at >= lifetime;
}

std::size_t ServerPool::min_idle_share() const {
  if (settings_.min_idle <= 0) return 0;
  const std::size_t threads = std::max<std::size_t>(1, shared_->attached());
  const auto min_idle = static_cast<std::size_t>(settings_.min_idle);
  return (min_idle + threads - 1) / threads;
}

milliseconds ServerPool::jittered(milliseconds delay) {
  if (delay.count() <= 1) return delay;
  std::uniform_int_distribution<milliseconds::rep> pick(delay.count() / 2, delay.count());
  return milliseconds(pick(rng_));
}

}  // namespace pgshift::pool
