// Session mode's reset of a server between two clients (docs/pooling.md, "Release" and
// "Server state that DISCARD ALL does not undo"), and the per-hand-out setting of a client's
// startup parameters (docs/pooling.md, "Startup parameters").
#include "pool/errc.hpp"
#include "pool/server_pool.hpp"
#include "pool/server_pool_check.hpp"

namespace pgshift::pool {

asio::awaitable<error_code> ServerPool::reset_for_reuse(PooledConnection& conn) {
  auto self = shared_from_this();
  if (!conn) co_return make_error_code(errc::check_failed);
  counters_.resets.add(1);
  CommandResult result;
  // DISCARD ALL cannot run inside a transaction block; a session that ended mid-transaction
  // is rolled back first (the server would do the same when the client disconnects).
  if (conn->txn_status == wire::txn_status::in_block ||
      conn->txn_status == wire::txn_status::failed) {
    result = co_await run_simple_command(*conn, "ROLLBACK", options_.check_timeout);
  } else {
    result.status = wire::txn_status::idle;
  }
  if (result.ok() && !conn->no_reuse) {
    // Once a backend made its temporary namespace it keeps it for life, and DISCARD ALL does
    // not undo that: the next client would not get a fresh backend (its PREPARE TRANSACTION
    // after using temporary tables is not refused as it should be). Such a server is closed.
    result = co_await run_simple_command(*conn, "SELECT 1 WHERE pg_my_temp_schema() <> 0",
                                         options_.check_timeout);
    if (result.ok() && result.rows > 0) conn->no_reuse = true;
  }
  if (conn->no_reuse) {
    conn.release(ReleaseState::clean);  // a goodbye, then closed (release() checks no_reuse)
    co_return error_code{};
  }
  if (result.ok()) {
    result = co_await run_simple_command(*conn, "DISCARD ALL", options_.check_timeout);
    conn->prepared.clear();  // DISCARD ALL deallocates every prepared statement
    if (result.ok()) {
      conn->param_state.reset();  // RESET ALL: back to the parameters it was opened with
      // The values the next client is told (ParameterStatus) must be the server's.
      if (co_await refresh_reported_parameters(*conn, options_.check_timeout)) {
        co_return error_code{};
      }
      result.ec = make_error_code(errc::check_failed);
    }
  }
  counters_.reset_failures.add(1);
  conn.release(ReleaseState::dirty);
  co_return result.ec ? result.ec : make_error_code(errc::check_failed);
}

asio::awaitable<bool> ServerPool::sync_parameters(PooledConnection& conn,
                                                  const StartupParams& wanted,
                                                  AcquireError& error) {
  auto self = shared_from_this();
  const bool unknown = conn->param_state.unknown;
  if (unknown) conn->param_state.current.clear();  // set every value again
  const std::string sql = parameter_sync_statement(conn->param_state, wanted);
  CommandResult result;
  if (!sql.empty()) result = co_await run_simple_command(*conn, sql, options_.check_timeout);
  if (sql.empty() || result.ok()) {
    apply_parameter_sync(conn->param_state, wanted);
    conn->param_state.unknown = false;
    if (!unknown || co_await refresh_reported_parameters(*conn, options_.check_timeout)) {
      co_return true;
    }
    result.ec = make_error_code(errc::check_failed);
  }
  error = AcquireError{};
  if (!result.ec && result.status == wire::txn_status::idle) {
    // The server refused a value (as it would have at login): the connection is fine.
    error.from_server = true;
    error.sqlstate = result.sqlstate;
    error.message = result.message;
    conn.release(ReleaseState::clean);
    co_return false;
  }
  error.ec = result.ec ? result.ec : make_error_code(errc::check_failed);
  error.sqlstate = "08006";
  error.message = "the server connection failed while pgshift set its parameters: " +
                  (result.ec ? result.ec.message() : result.message);
  conn.release(ReleaseState::dirty);
  co_return false;
}

}  // namespace pgshift::pool
