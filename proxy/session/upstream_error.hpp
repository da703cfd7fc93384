#pragma once
// One mapping from what went wrong upstream to what the client is told: the login (FATAL)
// and both relays (ERROR, the session goes on) take their SQLSTATE, message and detail from
// here, so a client sees the same words for the same failure wherever it happens.
//  - The server's own refusal (bad password, unknown database, too many connections) and a
//    pool wait that timed out speak for themselves: their SQLSTATE and message as they are.
//  - A connect failure (network, TLS, protocol) is 08006 with a summary; the reason is the
//    DETAIL.
//  - A server lost while the client waited on it is 08006 (connection_failure).
// Pure functions; thread-safe.
#include <string>
#include <string_view>

#include "pool/server_pool.hpp"
#include "pool/upstream.hpp"

namespace pgshift::proxy {

// What an ErrorResponse to the client says.
struct ClientError {
  std::string sqlstate;
  std::string message;
  std::string detail;
};

// SQLSTATE 08006, connection_failure: the upstream could not be reached or was lost.
inline constexpr std::string_view kConnectionFailure = "08006";

// No server could be acquired for the client (ServerPool::acquire, or the session's own
// checks before it: 28000 for upstream credentials pgshift cannot build, 57P01 while
// shutting down).
ClientError client_error(const pool::AcquireError& e);
// A dedicated (replication) connection could not be opened.
ClientError client_error(const pool::ConnectError& e);

// How the server was lost, for server_lost().
enum class ServerLoss : std::uint8_t {
  query,        // while a query of the client ran: the client stays
  transaction,  // while the client sat idle inside a transaction: the client stays
  session,      // the session's own server (session state on it): the session ends
};
ClientError server_lost(ServerLoss when);

// The login's wait for a server outlasted limits.login_timeout_ms.
ClientError upstream_wait_timed_out(std::string_view database, std::string_view route,
                                    std::string_view timeout_ms);

}  // namespace pgshift::proxy
