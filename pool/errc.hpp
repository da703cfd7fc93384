#pragma once
// Error codes of the pool (upstream connection setup and the server connection pools).
// Network and TLS failures keep the Asio / OpenSSL codes; these cover what the server said or
// did wrong, and why a pool could not hand out a connection.
#include <boost/system/error_code.hpp>
#include <type_traits>

namespace pgshift::pool {

enum class errc {
  ok = 0,
  tls_not_supported,             // the server answered 'N' to SSLRequest
  protocol_violation,            // a message or byte the protocol does not allow here
  server_error,                  // the server sent ErrorResponse (see ConnectError::sqlstate)
  unsupported_auth_method,       // GSSAPI, SSPI, SCRAM-SHA-256-PLUS only, unknown codes
  unsupported_protocol_version,  // the server sent NegotiateProtocolVersion
  missing_credentials,           // the method needs a secret we do not have (e.g. plaintext)
  timed_out,                     // connect_timeout elapsed
  // Server connection pools (pool/server_pool.hpp):
  wait_timeout,  // no server connection became available within query_wait_timeout
  pool_closed,   // the pool was shut down while (or before) the client waited
  check_failed,  // a health check or reset (SELECT 1, DISCARD ALL) got an unexpected answer
};

const boost::system::error_category& pool_category() noexcept;
inline boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), pool_category()};
}

}  // namespace pgshift::pool

template <>
struct boost::system::is_error_code_enum<pgshift::pool::errc> : std::true_type {};
