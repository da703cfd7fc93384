// The server connections of a session: one per side (source, target) at most, taken from the
// side's pool, and which of them is active (the one the server direction reads and the
// client direction writes to).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "proxy/control/route_state_store.hpp"
#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
#include "routing/migration_state.hpp"

namespace pgshift::proxy {

using routing::Side;

routing::Side ClientSession::authoritative_side() const {
  if (!runtime_.states || !route_->route->target) return Side::source;
  auto states = runtime_.states->snapshot();
  const routing::MigrationState* st = states->find(route_name());
  return st ? routing::authoritative_side(*st) : Side::source;
}

pool::ServerPool* ClientSession::side_pool(Side side, std::string& error) {
  SideState& s = sides_[static_cast<std::size_t>(side)];
  if (s.pool) return s.pool.get();
  const config::Route& route = *route_->route;
  const config::Upstream* up = side == Side::source ? &route.source : nullptr;
  if (side == Side::target && route.target) up = &*route.target;
  if (!up) {
    error = "route \"" + route.name + "\" has no target";
    return nullptr;
  }
  const auto& tls = side == Side::source ? route_->source_tls : route_->target_tls;
  s.upstream = make_upstream_params(*up, tls, profile_->identity, error);
  if (!s.upstream) return nullptr;
  pool::PoolKey key{route.name,
                    side == Side::source ? pool::UpstreamSide::source : pool::UpstreamSide::target,
                    s.upstream->database, s.upstream->credentials.user,
                    pool::pool_key_parameters(profile_->identity.startup_params)};
  s.pool = pools_->get(key, s.upstream, route.pool);
  if (!s.pool) {
    error = "pgshift is shutting down";
    return nullptr;
  }
  s.upstream = s.pool->params();  // one copy per pool, not per client
  return s.pool.get();
}

void ClientSession::set_active(Side side) {
  active_side_ = side;
  pool::ServerConnection* next = sides_[static_cast<std::size_t>(side)].conn.get();
  if (next == server_) return;
  server_ = next;
  ++server_gen_;
  if (server_) {
    cancel_slot_.attach(sides_[static_cast<std::size_t>(side)].upstream, server_->backend_key);
  } else {
    cancel_slot_.detach();
  }
  wake_server_reader();
}

asio::awaitable<bool> ClientSession::attach(Side side, pool::AcquireError& error,
                                            pool::AcquireOptions options) {
  SideState& s = sides_[static_cast<std::size_t>(side)];
  if (s.conn) {
    set_active(side);
    co_return true;
  }
  std::string why;
  pool::ServerPool* pool = side_pool(side, why);
  if (!pool) {
    error.message = why;
    error.sqlstate = s.upstream ? "57P01" : "28000";
    co_return false;
  }
  pool::PooledConnection conn = pool->try_acquire_now();
  if (!conn) {
    const auto wait_start = std::chrono::steady_clock::now();
    std::shared_ptr<pool::ServerPool> keep = s.pool;  // the session may end while waiting
    conn = co_await pool->acquire(error, options);
    const RouteMetrics& rm = metrics().route(route_name());
    rm.wait(side).Observe(seconds(std::chrono::steady_clock::now() - wait_start));
    if (error.timed_out) rm.pool_wait_timeouts[static_cast<std::size_t>(side)]->Increment();
    if (!conn) {
      log_warn(
          "no server connection for client",
          {f("session", id_), f("route", route_name()), f("side", routing::to_string(side)),
           f("host", s.upstream->host), f("error", error.message), f("sqlstate", error.sqlstate)});
      co_return false;
    }
  }
  // A pooled server may have been opened for, or last used by, a client with other
  // startup parameter values: bring them to this client's.
  if (pool::needs_parameter_sync(conn->param_state, profile_->tracked) &&
      !co_await pool->sync_parameters(conn, profile_->tracked, error)) {
    log_warn("could not set the client's parameters on a server",
             {f("session", id_), f("route", route_name()), f("side", routing::to_string(side)),
              f("error", error.message), f("sqlstate", error.sqlstate)});
    co_return false;
  }
  conn->prepared.set_capacity(
      static_cast<std::size_t>(route_->route->pool.prepared_statement_cache_size));
  if (s.conn || end_reason_ != EndReason::none) {
    // The session ended (or, impossible, got a server some other way) while waiting.
    conn.release(pool::ReleaseState::clean);
    co_return s.conn&& end_reason_ == EndReason::none;
  }
  s.conn = std::move(conn);
  set_active(side);
  co_return true;
}

void ClientSession::release_active() {
  if (!server_ || pinned_ || !txn_mode_ || direct_) return;
  SideState& s = sides_[static_cast<std::size_t>(active_side_)];
  if (s2c_idle_wait()) {
    // The server direction waits on this socket: cancel that wait before the connection
    // can go to another session.
    boost::system::error_code ignored;
    s.conn->stream.socket().cancel(ignored);
  }
  if (rs_) rs_->filter.clear();
  s.conn->txn_status = wire::txn_status::idle;
  s.conn.release(pool::ReleaseState::clean);
  set_active(active_side_);  // now null
}

asio::awaitable<void> ClientSession::dispose_active() {
  if (!server_) co_return;
  server_->stream.close();  // makes a write in progress fail at once
  while (writing_to_server_) {
    co_await wait_handoff();
  }
  if (!server_) co_return;
  SideState& s = sides_[static_cast<std::size_t>(active_side_)];
  if (s.conn) s.conn.release(pool::ReleaseState::dirty);
  if (rs_) rs_->filter.clear();
  tracker_.reset();
  set_active(active_side_);  // now null
}

asio::awaitable<void> ClientSession::wait_handoff() {
  if (!handoff_timer_)
    handoff_timer_ = std::make_unique<asio::steady_timer>(client_.get_executor());
  handoff_timer_->expires_at(std::chrono::steady_clock::time_point::max());
  co_await handoff_timer_->async_wait(asio::as_tuple(asio::use_awaitable));
}

void ClientSession::wake_server_reader() {
  if (s2c_ == S2c::idle_wait) s2c_to(S2c::waking);
  if (s2c_ == S2c::stopped && route_metrics_ &&
      (server_ || !local_out_.empty() || end_reason_ != EndReason::none)) {
    s2c_to(S2c::running);
    asio::co_spawn(
        client_.get_executor(),
        [self = shared_from_this()] { return self->mux_server_to_client(); }, asio::detached);
    return;
  }
  if (s2c_idle_wait() && server_) {
    // Only an idle wait (no bytes held) is interrupted; reads in progress finish by
    // themselves and the loop looks at the state again.
    boost::system::error_code ignored;
    for (auto& s : sides_) {
      if (s.conn) s.conn->stream.socket().cancel(ignored);
    }
  }
}

// Gives every server back: reused if the session ended cleanly at a transaction boundary
// (reset with DISCARD ALL first when the session may have left state on it), closed
// otherwise.
asio::awaitable<void> ClientSession::release_all(bool server_ok) {
  cancel_slot_.detach();
  server_ = nullptr;
  bool clean = server_ok && end_reason_ == EndReason::client_closed && tracker_.idle() &&
               filter_empty() && !lost_transaction_;
  for (auto& s : sides_) {
    if (!s.conn) continue;
    if (clean && s.conn->txn_status == wire::txn_status::idle) {
      if (txn_mode_ && !pinned_) {
        s.conn.release(pool::ReleaseState::clean);
        continue;
      }
      auto* pool = s.conn.pool();
      if (!co_await pool->reset_for_reuse(s.conn)) {
        s.conn.release(pool::ReleaseState::clean);
        continue;
      }
    }
    if (s.conn) s.conn.release(pool::ReleaseState::dirty);
  }
}

}  // namespace pgshift::proxy
