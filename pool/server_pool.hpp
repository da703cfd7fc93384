#pragma once
// One I/O thread's pool of server connections for one pool key (docs/pooling.md).
//
// acquire():
//   1. the most recently released idle connection of this thread (LIFO, so the fewest stay
//      warm and the rest age out), skipping ones past server_lifetime or dead (closed or
//      readable while idle); one idle longer than health_check_after is checked with
//      `SELECT 1` first. A plain-TCP idle connection is watched while it waits (a read is
//      pending on it, server_pool_watch.cpp), so one that the server closes or writes to is
//      dropped when that happens, and the hand-out costs no system call;
//   2. else, if fewer than `size` connections exist on all threads (PoolShared), a new one,
//      retrying network/TLS failures with capped exponential backoff for at most the
//      upstream's connect_timeout (never past the deadline);
//   3. else a place in this thread's FIFO queue until a connection is released to it, a slot
//      frees up, or query_wait_timeout passes. A waiter that waited half of
//      query_wait_timeout may use the `reserve` slots.
//      Before it sleeps, and again every rebalance_after (doubling), a waiter asks the other
//      threads for an idle connection: one is handed over (below) instead of a new login.
// release(): only a clean connection (caller says so, ReadyForQuery 'I', open, younger than
// server_lifetime) is kept: handed to the first waiter of this thread, else, if another
// thread has waiters, handed over to that thread, else put on the idle list.
//
// Hand-over (docs/threading.md): a connection moves to another I/O thread's pool without
// being closed: its socket leaves this io_context (Stream::detach, on this thread), travels
// in a post to the other thread's executor and is adopted there (Stream::adopt); TLS
// connections move with their OpenSSL state. Its slot moves with it, so `size` holds.
//
// Thread-safety: none. A ServerPool belongs to one io_context thread; every member except
// waiting_count(), idle_count() and local_stats() must be called on that thread, and every
// PooledConnection must be released or destroyed there. PoolShared reaches it from other
// threads only by posting to its executor.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "pool/pool_shared.hpp"
#include "pool/pool_stats.hpp"
#include "pool/upstream.hpp"

namespace pgshift::pool {

// Behaviour that has no configuration key (documented in docs/pooling.md). Tests shorten
// the times.
struct ServerPoolOptions {
  // An idle connection unused for this long gets a `SELECT 1` before it is handed out
  // (PgBouncer's server_check_delay, default 30 s).
  std::chrono::milliseconds health_check_after{30'000};
  // Limit for the pool's own round trips: SELECT 1, DISCARD ALL.
  std::chrono::milliseconds check_timeout{5'000};
  // Reconnect backoff: the first retry after ~backoff_initial, doubling up to backoff_max,
  // each delay drawn uniformly from [delay/2, delay] so reconnecting clients spread out.
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5'000};
  // How often a waiter asks the other threads again for one of their idle connections (a
  // hand-over); the first ask is when it starts waiting. The interval doubles up to 1 s.
  std::chrono::milliseconds rebalance_after{10};
  // When query_wait_timeout is 0 (wait forever), waiters may use `reserve` after this long.
  std::chrono::milliseconds reserve_after_unbounded{5'000};
  // Graceful close: Terminate, then wait this long for the server to hang up, so that the
  // slot is freed only once the backend is gone.
  std::chrono::milliseconds close_timeout{1'000};
  // PoolSet's maintenance period.
  std::chrono::milliseconds maintenance_interval{1'000};
};

// How the caller leaves a connection it gives back.
enum class ReleaseState {
  clean,  // at ReadyForQuery, nothing outstanding, no session state that must not leak
  dirty,  // unknown or failed protocol state: closed, never reused
};

struct AcquireError {
  error_code ec;        // errc::wait_timeout, errc::pool_closed, operation_aborted (cancelled), or
                        // the last connect error (network, TLS, errc::server_error...)
  std::string message;  // for the client's ErrorResponse and the log; never a password
  // The SQLSTATE to send to the client: the server's own when from_server, else
  // 53300 (wait timeout), 08006 (upstream unreachable), 57P01 (pool closed / cancelled).
  std::string sqlstate;
  bool from_server = false;  // the server refused (auth, unknown database...): not retried
  bool timed_out = false;    // query_wait_timeout passed (waiting or retrying)
};

// How an acquire() may open a new connection (docs/pooling.md, "Outages, reconnects and
// backoff").
struct AcquireOptions {
  // Retry retryable connect failures (with backoff) for at most the upstream's
  // connect_timeout. false: one attempt only, for a caller with somewhere else to go (a split
  // read falls back to the authoritative side at once).
  bool retry_connect = true;
};

class ServerPool;

// A server connection lent by a ServerPool. Move-only. Destroying it without release() closes
// the connection as dirty (so a session that ends on an exception never leaks a slot).
class PooledConnection {
 public:
  PooledConnection() = default;
  PooledConnection(PooledConnection&&) noexcept = default;
  PooledConnection& operator=(PooledConnection&& other) noexcept;
  ~PooledConnection();

  explicit operator bool() const noexcept { return conn_ != nullptr; }
  ServerConnection& operator*() const noexcept { return *conn_; }
  ServerConnection* operator->() const noexcept { return conn_.get(); }
  ServerConnection* get() const noexcept { return conn_.get(); }
  ServerPool* pool() const noexcept { return pool_.get(); }

  // Gives the connection back to its pool (see ServerPool::release). Empties the handle.
  void release(ReleaseState state) noexcept;

 private:
  friend class ServerPool;
  PooledConnection(std::shared_ptr<ServerPool> pool, std::unique_ptr<ServerConnection> conn)
      : pool_(std::move(pool)), conn_(std::move(conn)) {}

  std::shared_ptr<ServerPool> pool_;
  std::unique_ptr<ServerConnection> conn_;
};

class ServerPool : public std::enable_shared_from_this<ServerPool> {
  struct Private {};

 public:
  // Creates the pool and attaches it to `shared` (so other threads can wake it). `executor`
  // is the owning thread's; every coroutine of the pool runs there.
  static std::shared_ptr<ServerPool> create(asio::any_io_executor executor,
                                            std::shared_ptr<PoolShared> shared,
                                            std::shared_ptr<const UpstreamParams> params,
                                            const config::Pool& settings,
                                            ServerPoolOptions options = {});
  ServerPool(Private, asio::any_io_executor executor, std::shared_ptr<PoolShared> shared,
             std::shared_ptr<const UpstreamParams> params, const config::Pool& settings,
             ServerPoolOptions options);
  ~ServerPool();
  ServerPool(const ServerPool&) = delete;
  ServerPool& operator=(const ServerPool&) = delete;

  // New upstream parameters (used for connections opened from now on) and settings (after a
  // reload). Cheap when nothing changed; equal parameters keep the pool's own copy.
  void configure(std::shared_ptr<const UpstreamParams> params, const config::Pool& settings);
  // The parameters new connections use: sessions share this copy instead of keeping theirs.
  const std::shared_ptr<const UpstreamParams>& params() const { return params_; }

  // A connection, or an empty handle with `error` filled. Never throws; cancellation (e.g. the
  // client went away) gives operation_aborted and leaves the pool consistent. A connect
  // attempt that fails for good (retries exhausted, or not retryable) also fails this
  // thread's queued waiters with the same error (except for 53xxx, the server being full),
  // so nobody sleeps through query_wait_timeout against an upstream that is down.
  asio::awaitable<PooledConnection> acquire(AcquireError& error, AcquireOptions options = {});

  // The hot path without a coroutine frame: a connection from this thread's idle list if one
  // is usable right now (within lifetime, not due for a health check, and: plain TCP, not
  // seen closing by its idle watch; TLS, passing the liveness probe), else an empty handle,
  // and the caller falls back to acquire(), which probes every connection it takes.
  PooledConnection try_acquire_now();

  // Takes the connection back from `conn` (which becomes empty). Kept for reuse only when
  // `state` is clean, txn_status is 'I', the stream is open and server_lifetime has not
  // passed; anything else is closed and its slot freed.
  void release(PooledConnection& conn, ReleaseState state) noexcept;

  // Session mode: makes a connection safe for the next client with `DISCARD ALL` (after a
  // ROLLBACK if a transaction is open), expecting CommandComplete and ReadyForQuery 'I'
  // within options.check_timeout. On failure the connection is closed (conn becomes empty)
  // and the error returned. The caller must know nothing is outstanding on it.
  // A server with state DISCARD ALL cannot undo (ServerConnection::no_reuse, or a temporary
  // namespace, asked of the server) is released to be closed: conn becomes empty and the
  // result is success.
  asio::awaitable<error_code> reset_for_reuse(PooledConnection& conn);

  // Brings a server's tracked startup parameters to a client's (pool/server_params.hpp) with
  // one set_config() round trip, only when they differ. ParameterStatus answers update
  // conn->parameters, so they are what the server reports for the client's values. false
  // with `error` filled when the server refuses a value (its SQLSTATE and message; the
  // connection goes back to the pool) or the round trip fails (the connection is closed);
  // conn is then empty. The caller must know nothing is outstanding on it.
  asio::awaitable<bool> sync_parameters(PooledConnection& conn, const StartupParams& wanted,
                                        AcquireError& error);

  // One maintenance pass (PoolSet runs it every maintenance_interval): closes idle
  // connections past server_idle_timeout (down to the min_idle share of this thread) or
  // server_lifetime, or found dead, or over `size` after a reload; opens connections up to
  // this thread's share of min_idle (min_idle split evenly over the threads, rounded up).
  void maintain();

  // Stops the pool: waiters fail with pool_closed, idle connections are closed, later
  // releases close their connection, acquire fails. Idempotent.
  void close();
  // Closes every idle connection of this thread's pool now (gracefully: Terminate, so the
  // backend exits), e.g. before DROP DATABASE of its database. Connections in use stay.
  void drop_idle();
  // Template databases (template0, template1) never keep idle connections: CREATE DATABASE
  // copies template1 and refuses while anyone is connected to it (docs/pooling.md).
  static bool keeps_no_idle(std::string_view database);
  bool closed() const noexcept { return closed_; }

  const PoolKey& key() const noexcept { return shared_->key(); }
  PoolShared& shared() const noexcept { return *shared_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }
  const ServerPoolOptions& options() const noexcept { return options_; }

  // ---- any thread ----
  int waiting_count() const noexcept { return waiting_.load(); }
  std::int64_t idle_count() const noexcept { return gauges_.idle.get(); }
  // This thread's gauges and counters (identity and `total` left empty).
  PoolStats local_stats() const;

  // ---- posted by PoolShared from other threads (public for that only) ----
  // A slot was freed elsewhere while this thread has waiters: let the first one retry.
  void on_slot_available();
  // Another thread has waiters: hand one idle connection over to it.
  void on_handover_request();
  // A connection handed over by another thread's pool (see Handover in the .cpp).
  struct Handover;
  void adopt(Handover handover);

 private:
  using Clock = std::chrono::steady_clock;
  struct Waiter;
  struct WaitRegistration;
  struct IdleEntry {
    std::unique_ptr<ServerConnection> conn;
    Clock::time_point since;
  };
  struct Gauges {
    OwnedCounter idle, active, connecting, closing;
  };
  struct Counters {
    OwnedCounter acquires, waits, connects, handovers, connect_failures, wait_timeouts, closed,
        dead, health_checks, health_check_failures, resets, reset_failures, wait_us;
  };

  // Steps of acquire(). Its fast path (an idle connection of this thread) is take_idle();
  // everything else, waiting or connecting, is in wait_or_connect()'s coroutine frame.
  struct AcquireLimits {
    Clock::time_point start, deadline, reserve_at;
  };
  // The limits of an acquire() that starts at `start` (query_wait_timeout, reserve).
  AcquireLimits acquire_limits(Clock::time_point start) const;
  struct AcquireWait;
  // After a miss on the idle list: a new connection if a slot is free, else a place in the
  // queue until one of the things acquire() waits for happens. `cancelled`: the caller
  // cancelled the wait (the result is then empty and `error` untouched).
  asio::awaitable<PooledConnection> wait_or_connect(AcquireLimits limits, AcquireOptions options,
                                                    AcquireError& error, bool& cancelled);
  // Asks the other threads for an idle connection when it is time to, queues the waiter and
  // sets its timer to the next wake point (deadline, next rebalance, reserve).
  void queue_waiter(AcquireWait& wait, Clock::time_point now, bool allow_reserve);
  // What a queued waiter found when its timer fired (ec) or was cancelled.
  enum class WakeResult {
    done,        // served (result set) or failed with another client's connect error
    cancelled,   // the caller cancelled the wait
    look_again,  // woken for a slot, or a wake point passed: idle list and slot again
  };
  WakeResult take_wake(AcquireWait& wait, error_code ec, PooledConnection& result,
                       AcquireError& error);
  // Pops idle connections (most recent first), closing expired and dead ones, until one is
  // usable; returns it counted as active, and whether it needs a health check. With
  // stop_at_check, one that needs a check is left in place and nothing is returned. `probe`:
  // every connection gets the liveness probe (one system call); otherwise only TLS ones do
  // (plain TCP ones are watched while idle).
  PooledConnection pop_idle(bool& needs_check, bool stop_at_check, bool probe);
  asio::awaitable<PooledConnection> take_idle();  // pop_idle + health check
  asio::awaitable<PooledConnection> open_for_client(Clock::time_point deadline,
                                                    AcquireOptions options, AcquireError& error);
  // Why connect_with_backoff() stopped without a connection.
  enum class GaveUp { no_retry, deadline, retry_budget };
  asio::awaitable<std::unique_ptr<ServerConnection>> connect_with_backoff(
      Clock::time_point deadline, bool retry, ConnectError& last, int& attempts, GaveUp& why);
  void describe_connect_failure(const ConnectError& last, int attempts, GaveUp why,
                                AcquireError& error) const;
  // Hands a failed connect's error to every queued waiter of this thread (see acquire()).
  void fail_waiters(const AcquireError& error);
  void fail_wait(AcquireError& error, error_code ec) const;

  // Puts an open, clean connection where it is needed: a local waiter, else (may_hand_over)
  // another thread's waiters, else the idle list (idle since `since`); closed when over size.
  // Gauges: the caller's business.
  void place(std::unique_ptr<ServerConnection> conn, bool may_hand_over = true,
             Clock::time_point since = Clock::now());
  // Hands `conn` over to a thread with waiters (server_pool_rebalance.cpp). False, with conn
  // untouched, if no other thread waits; true if it went, or if it could not move (then it
  // was out of step with its server, and is closed).
  bool hand_over(std::unique_ptr<ServerConnection>& conn, Clock::time_point since);
  // Closes a connection and frees its slot. Graceful: Terminate first and wait for the
  // server to hang up (asynchronously) before the slot is freed.
  void retire(std::unique_ptr<ServerConnection> conn, bool graceful);
  static asio::awaitable<void> close_gracefully(std::shared_ptr<ServerPool> self,
                                                std::unique_ptr<ServerConnection> conn);
  // After a slot was freed (or a wake-up for one went unused): serve a local waiter, else
  // tell a thread with waiters.
  void after_slot_freed();
  // Opens one connection for min_idle (maintenance).
  static asio::awaitable<void> open_idle(std::shared_ptr<ServerPool> self);

  // The idle watch (server_pool_watch.cpp): a pending MSG_PEEK read on a plain-TCP idle
  // connection, so that a server that closes (or says anything) while idle is dropped at
  // once. Edge-triggered epoll reports only what arrives after the watch is queued, or after
  // the last read that drained the socket; what came with that read (a FIN right behind a
  // ReadyForQuery) is left to maintenance's probe.
  void watch(ServerConnection& conn);
  // Stops the watch (no system call): before a connection leaves the idle list.
  static void unwatch(ServerConnection& conn) noexcept;
  void on_idle_readable(const ServerConnection* conn, std::uint32_t generation);

  void wake_first_waiter();
  bool expired(const ServerConnection& conn, Clock::time_point now) const;
  std::size_t min_idle_share() const;
  std::chrono::milliseconds jittered(std::chrono::milliseconds delay);

  asio::any_io_executor executor_;
  std::shared_ptr<PoolShared> shared_;
  std::shared_ptr<const UpstreamParams> params_;
  config::Pool settings_;
  ServerPoolOptions options_;
  bool closed_ = false;

  std::deque<IdleEntry> idle_;   // back = most recently released
  std::deque<Waiter*> waiters_;  // FIFO; each lives in its acquire() coroutine frame
  std::vector<asio::steady_timer*> backoff_timers_;  // cancelled by close()
  std::atomic<int> waiting_{0};                      // waiters_ of this pool, for PoolShared
  int opening_idle_ = 0;                             // open_idle() coroutines running
  Clock::time_point open_idle_not_before_{};         // backoff for min_idle connects
  std::chrono::milliseconds open_idle_backoff_{0};
  std::string last_connect_error_;  // for wait-timeout messages during an outage
  std::minstd_rand rng_;

  Gauges gauges_;
  Counters counters_;
};

}  // namespace pgshift::pool
