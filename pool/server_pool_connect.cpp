// Opening new server connections for a pool: connect with capped, jittered backoff for at
// most the upstream's connect_timeout (and never past the waiter's deadline), retrying only
// what a retry can fix.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <optional>

#include "pool/errc.hpp"
#include "pool/server_pool.hpp"
#include "pool/upstream_detail.hpp"
#include "wire/errc.hpp"

namespace pgshift::pool {
namespace {

using detail::use_tuple;
using std::chrono::milliseconds;

// Whether another attempt can succeed where this one failed. Network and TLS failures other
// than a failed certificate check can (an outage, a failover in progress); so can a server
// that is starting up, shutting down, out of connections or recovering (classes 08, 53, 57P,
// 58). A server that refused our credentials or database, or a configuration we cannot
// satisfy, will refuse again: the client gets that error at once.
bool is_retryable(const ConnectError& e) {
  if (e.from_server()) {
    const std::string_view s = e.sqlstate;
    return s.starts_with("08") || s.starts_with("53") || s.starts_with("57P") ||
           s.starts_with("58");
  }
  if (e.ec.category() == pool_category()) {
    switch (static_cast<errc>(e.ec.value())) {
      case errc::unsupported_auth_method:
      case errc::unsupported_protocol_version:
      case errc::missing_credentials:
      case errc::pool_closed:
        return false;
      default:
        return true;
    }
  }
  if (e.ec == asio::error::invalid_argument || e.ec == asio::error::operation_aborted) {
    return false;
  }
  if (std::error_code(e.ec) == wire::errc::auth_failed) return false;
  // A server certificate that ca_file does not vouch for, or that names another host, will
  // be the same on the next attempt: a configuration error the client hears about at once
  // instead of after query_wait_timeout.
  if (e.ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned long>(e.ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    return false;
  }
  return true;
}

// Terminate, then read until the server hangs up: PostgreSQL removes the backend from
// pg_stat_activity and frees its connection slot before the socket closes, so a slot
// freed after this can be reused without ever exceeding the server-side count.

}  // namespace

asio::awaitable<PooledConnection> ServerPool::open_for_client(Clock::time_point deadline,
                                                              AcquireOptions options,
                                                              AcquireError& error) {
  // The caller took a slot for us. Give it back however we leave without a connection,
  // including by exception or by the frame being destroyed.
  struct SlotGuard {
    ServerPool& pool;
    bool armed = true;
    ~SlotGuard() {
      pool.gauges_.connecting.add(-1);
      if (armed) {
        pool.shared_->return_slot();
        pool.after_slot_freed();
      }
    }
  };
  gauges_.connecting.add(1);
  ConnectError last;
  int attempts = 0;
  GaveUp why = GaveUp::no_retry;
  std::unique_ptr<ServerConnection> conn;
  std::optional<SlotGuard> guard;
  guard.emplace(*this);
  conn = co_await connect_with_backoff(deadline, options.retry_connect, last, attempts, why);
  if (conn && !closed_) {
    guard->armed = false;
    guard.reset();
    gauges_.active.add(1);
    co_return PooledConnection(shared_from_this(), std::move(conn));
  }
  if (conn) {  // the pool closed while we connected
    conn->stream.close();
    counters_.closed.add(1);
  }
  if (closed_) {
    guard.reset();
    fail_wait(error, errc::pool_closed);
    co_return PooledConnection{};
  }
  describe_connect_failure(last, attempts, why, error);
  // The waiters queued here would only repeat this failure (a server that is merely full,
  // 53xxx, may still free a connection for them). Fail them before the slot goes back, so
  // that it does not wake one of them for another round of attempts.
  if (error.ec != asio::error::operation_aborted && !error.sqlstate.starts_with("53")) {
    fail_waiters(error);
  }
  guard.reset();
  co_return PooledConnection{};
}

void ServerPool::fail_wait(AcquireError& error, error_code ec) const {
  error = AcquireError{};
  error.ec = ec;
  const std::string name = to_string(key());
  if (ec == errc::pool_closed) {
    error.sqlstate = "57P01";
    error.message = "server connection pool " + name + " is closed";
    return;
  }
  error.sqlstate = "53300";
  error.timed_out = true;
  error.message =
      "no server connection available for pool " + name + " within query_wait_timeout (" +
      detail::describe_ms(settings_.query_wait_timeout) + "): " + std::to_string(shared_->total()) +
      " connections in use (size " + std::to_string(shared_->size()) + ", reserve " +
      std::to_string(shared_->reserve()) + ")";
  if (!last_connect_error_.empty()) {
    error.message += "; last connect error: " + last_connect_error_;
  }
}

void ServerPool::describe_connect_failure(const ConnectError& last, int attempts, GaveUp why,
                                          AcquireError& error) const {
  const std::string endpoint = detail::describe_endpoint(*params_);
  const std::string where = "could not connect to upstream " + endpoint;
  error.ec = last.ec;
  if (last.from_server()) {
    error.from_server = true;
    error.sqlstate = last.sqlstate;
    error.message =
        where + ": " + (last.server_message.empty() ? last.message : last.server_message);
  } else {
    error.sqlstate = last.ec == asio::error::operation_aborted ? "57014" : "08006";
    // connect_upstream's "could not connect to host:port (address): reason" already names
    // the endpoint: keep only what follows it.
    const std::string prefix = "could not connect to " + endpoint;
    if (last.message.starts_with(prefix)) {
      error.message = where + last.message.substr(prefix.size());
    } else {
      error.message = where + ": " + last.message;
    }
  }
  const std::string tries =
      " (gave up after " + std::to_string(attempts) + " attempt" + (attempts == 1 ? "" : "s");
  if (why == GaveUp::deadline) {
    error.timed_out = true;
    error.message += tries + ": query_wait_timeout of " +
                     detail::describe_ms(settings_.query_wait_timeout) + " elapsed)";
  } else if (why == GaveUp::retry_budget) {
    error.message +=
        tries + " within connect_timeout of " + detail::describe_ms(params_->connect_timeout) + ")";
  }
}

asio::awaitable<std::unique_ptr<ServerConnection>> ServerPool::connect_with_backoff(
    Clock::time_point deadline, bool retry, ConnectError& last, int& attempts, GaveUp& why) {
  // Keeps the backoff timer cancellable by close() for exactly as long as it exists.
  struct TimerRegistration {
    ServerPool& pool;
    asio::steady_timer& timer;
    TimerRegistration(ServerPool& p, asio::steady_timer& t) : pool(p), timer(t) {
      pool.backoff_timers_.push_back(&timer);
    }
    ~TimerRegistration() { std::erase(pool.backoff_timers_, &timer); }
  };
  asio::steady_timer timer(executor_);
  TimerRegistration registration(*this, timer);
  milliseconds delay = options_.backoff_initial;
  // Retries stop once the upstream's connect_timeout has passed since the first attempt:
  // a client hears about an upstream that is down within about connect_timeout, not
  // query_wait_timeout (issue 16). A restart or failover shorter than that goes unnoticed.
  const auto retry_until = Clock::now() + params_->connect_timeout;
  why = GaveUp::no_retry;
  for (;;) {
    const auto params = params_;  // configure() may swap params_ while we connect
    const auto now = Clock::now();
    ++attempts;
    std::unique_ptr<ServerConnection> conn;
    // Never let one attempt run past the client's deadline, nor a retry past the budget.
    auto attempt_end = deadline;
    if (attempts > 1) attempt_end = std::min(attempt_end, retry_until);
    if (attempt_end != Clock::time_point::max() && attempt_end - now < params->connect_timeout) {
      UpstreamParams shorter = *params;
      shorter.connect_timeout =
          std::max(milliseconds(1), std::chrono::ceil<milliseconds>(attempt_end - now));
      conn = co_await connect_upstream(shorter, last);
    } else {
      conn = co_await connect_upstream(*params, last);
    }
    if (conn) {
      counters_.connects.add(1);
      last_connect_error_.clear();
      co_return conn;
    }
    counters_.connect_failures.add(1);
    last_connect_error_ = last.message;
    if (closed_ || !retry || !is_retryable(last)) co_return nullptr;
    auto after = Clock::now();
    if (after >= deadline) {
      why = GaveUp::deadline;
      co_return nullptr;
    }
    auto sleep = jittered(delay);
    // A retry needs a useful share of the budget left after its sleep.
    if (after + sleep + options_.backoff_initial >= retry_until) {
      why = GaveUp::retry_budget;
      co_return nullptr;
    }
    if (deadline - after < sleep) sleep = std::chrono::ceil<milliseconds>(deadline - after);
    timer.expires_after(sleep);
    auto [ec] = co_await timer.async_wait(use_tuple);
    if (ec == asio::error::operation_aborted || closed_) co_return nullptr;  // keeps `last`
    if (Clock::now() >= deadline) {
      why = GaveUp::deadline;
      co_return nullptr;
    }
    delay = std::min(delay * 2, options_.backoff_max);
  }
}

}  // namespace pgshift::pool
