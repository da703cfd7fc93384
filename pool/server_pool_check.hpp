#pragma once
// Small round trips the pool makes on a server connection of its own (health check
// `SELECT 1`, session reset `DISCARD ALL`), and the non-blocking liveness probe of an idle
// connection. Not thread-safe: run on the connection's thread, with nothing outstanding.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pool/upstream.hpp"
#include "wire/message_types.hpp"

namespace pgshift::pool {

struct CommandResult {
  error_code ec;         // I/O or framing error, errc::timed_out; the connection is unusable
  std::string sqlstate;  // of the first ErrorResponse, if any
  std::string message;   // of that ErrorResponse
  char status = 0;       // status of the final ReadyForQuery ('I', 'T', 'E')
  int rows = 0;          // DataRow messages seen
  std::vector<std::optional<std::string>> first_row;  // the first DataRow (nullopt: NULL)
  bool ok() const { return !ec && sqlstate.empty() && status == wire::txn_status::idle; }
};

// Sends `sql` as one simple Query and reads every answer up to ReadyForQuery, within
// `timeout`. Updates conn.txn_status, and conn.parameters from ParameterStatus (DISCARD ALL
// resets parameters the server reports). Never throws.
// https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.4
asio::awaitable<CommandResult> run_simple_command(ServerConnection& conn, std::string_view sql,
                                                  std::chrono::milliseconds timeout);

// True if an idle connection still looks usable: its socket is open, not at EOF, and has
// nothing to read (an idle server sends nothing, so any byte, e.g. the FATAL of
// pg_terminate_backend, means the connection is going away or out of sync). One
// recv(MSG_PEEK | MSG_DONTWAIT) system call; never blocks.
bool is_connection_alive(ServerConnection& conn) noexcept;

// Reads the reported parameters (conn.parameters) again with current_setting(), after
// commands that may change them without the server reporting it to pgshift (DISCARD ALL
// after a client's session: the server reports only what changed since the client's last
// report). false if the round trip failed (then the connection is unusable, txn_status '?').
asio::awaitable<bool> refresh_reported_parameters(ServerConnection& conn,
                                                  std::chrono::milliseconds timeout);

}  // namespace pgshift::pool
