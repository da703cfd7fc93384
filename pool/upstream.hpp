#pragma once
// Opening an authenticated connection to an upstream PostgreSQL server: resolve (DNS on
// every connect, so an RDS failover that moves the name is followed), TCP connect with a
// timeout, optional TLS (disable | require | verify-ca | verify-full), StartupMessage,
// authentication (SCRAM-SHA-256, MD5, cleartext), then ParameterStatus/BackendKeyData up to
// the first ReadyForQuery. Also CancelRequest delivery to an upstream.
#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "pool/errc.hpp"
#include "pool/prepared_set.hpp"
#include "pool/server_params.hpp"
#include "pool/stream.hpp"
#include "wire/message_types.hpp"
#include "wire/startup.hpp"

namespace pgshift::pool {

// Builds the OpenSSL client context for an upstream TLS setting: require -> encrypt without
// verification; verify-ca -> chain checked against ca_file; verify-full -> chain and host
// name (the name is per connection: UpstreamParams::tls_server_name, else host). TLS 1.2+.
// Returns nullptr for disable. Throws std::runtime_error with a clear message on a missing or
// bad CA file (startup/reload only).
std::shared_ptr<asio::ssl::context> make_upstream_tls_context(const config::UpstreamTls& tls);

// How pgshift proves itself to the upstream.
struct Credentials {
  std::string user;
  std::string password;  // plaintext, or an md5 stored hash "md5..." (works for md5 auth only)
  // SCRAM passthrough: keys recovered from the client's own SCRAM exchange.
  std::optional<std::array<std::uint8_t, 32>> scram_client_key, scram_server_key;
  bool operator==(const Credentials&) const = default;
};

struct UpstreamParams {
  std::string host;
  std::uint16_t port = 5432;
  std::string database;
  Credentials credentials;
  config::UpstreamTlsMode tls_mode = config::UpstreamTlsMode::disable;
  std::string tls_server_name;                      // verify-full host name (default host)
  std::shared_ptr<asio::ssl::context> tls_context;  // required unless tls_mode == disable
  std::chrono::milliseconds connect_timeout{5000};  // covers resolve+connect+TLS+auth
  // Extra startup parameters to forward (application_name, client_encoding, options,
  // replication, DateStyle...). user/database are set from the fields above.
  std::vector<std::pair<std::string, std::string>> startup_params;
  bool operator==(const UpstreamParams&) const = default;
};

// An authenticated server connection, ready for queries.
struct ServerConnection {
  explicit ServerConnection(Stream s) : stream(std::move(s)) {}
  Stream stream;
  wire::CancelKey backend_key;                                  // from BackendKeyData
  std::vector<std::pair<std::string, std::string>> parameters;  // ParameterStatus at startup
  char txn_status = wire::txn_status::idle;                     // last ReadyForQuery status
  std::chrono::steady_clock::time_point created_at = std::chrono::steady_clock::now();
  // Server-side names of the protocol-level prepared statements it holds (transaction
  // pooling, proxy/prepared_statements.hpp). Emptied by DISCARD ALL.
  PreparedSet prepared;
  // Its tracked startup parameters (pool/server_params.hpp): set from the startup packet
  // it was opened with, then by ServerPool::sync_parameters and reset_for_reuse.
  ParameterState param_state;
  // The session left state on it that DISCARD ALL does not undo (a temporary namespace,
  // LOAD, two-phase commit: docs/pooling.md): closed at release instead of reused.
  bool no_reuse = false;
  // While idle in a pool: the generation of its idle watch (ServerPool, server_pool_watch.cpp).
  // A watch completing with an older generation is stale and ignored.
  std::uint32_t idle_watch = 0;
};

struct ConnectError {
  // network / TLS (asio, asio::ssl) error, pool::errc (pool/errc.hpp: server_error when the
  // server sent ErrorResponse, timed_out, tls_not_supported, protocol_violation,
  // unsupported_auth_method...), a wire::errc framing error, or wire::errc::auth_failed when
  // the server's SCRAM signature is wrong.
  error_code ec;
  std::string message;  // human readable, safe to log (never a password)
  // If the server sent an ErrorResponse (bad password, unknown database, too many
  // connections...): its fields, so the proxy can relay SQLSTATE and message to the client.
  std::string sqlstate;
  std::string server_message;
  bool from_server() const { return !sqlstate.empty(); }
};

// Returns nullptr and fills `error` on failure. Never throws.
asio::awaitable<std::unique_ptr<ServerConnection>> connect_upstream(const UpstreamParams& params,
                                                                    ConnectError& error);

// Sends a CancelRequest for `key` to the upstream (over TLS when the upstream uses TLS,
// as PostgreSQL requires the same SSL negotiation for cancel connections), then waits for the
// server to close (as libpq does), all within params.connect_timeout. Success once the request
// was written, even if the close does not come in time. Never throws.
asio::awaitable<error_code> send_cancel(const UpstreamParams& params, wire::CancelKey key);

}  // namespace pgshift::pool
