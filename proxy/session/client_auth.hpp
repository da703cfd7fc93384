#pragma once
// Authenticates a client to pgshift (SCRAM-SHA-256, md5 or trust) against the users file,
// with per-user and per-address rules (client_auth.hba_file) and a failed-login throttle.
// On failure the client has been sent the same FATAL error PostgreSQL would send (28P01 for
// a wrong password, 28000 for other refusals); the caller closes the connection.
#include <array>
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "config/users.hpp"
#include "proxy/runtime/runtime.hpp"
#include "proxy/session/message_io.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {

struct ClientAuthResult {
  bool ok = false;
  std::string failure;  // for the log: why (never a password)
  // For pgshift_client_login_failures_total when !ok.
  LoginFailure kind = LoginFailure::auth_failed;
  // A password (or SCRAM proof) was checked and was wrong: a guess for the throttle.
  bool wrong_password = false;
  // A wrong password's refusal (28P01), sent by authenticate() only after the throttle has
  // counted the guess: a client that reconnects at once must meet the count.
  std::string refusal_sqlstate, refusal_message;
  // The user's entry in the users file (null for trust without an entry).
  const config::UserEntry* entry = nullptr;
  // SCRAM passthrough: ClientKey recovered from the client's proof.
  std::optional<std::array<std::uint8_t, 32>> scram_client_key;
};

// Who is logging in, from where, as the hba rules and the throttle see it.
struct ClientAuthRequest {
  std::string user, database;
  std::string address;  // the client's IP address, no port ("127.0.0.1", "::1")
  bool ssl = false;
  bool physical_replication = false;  // startup parameter replication=true/on/yes/1
};

// The whole client authentication step of a login: client_auth.hba_file's first matching
// rule (or client_auth.method when there is no hba_file) picks the method, the throttle
// (client_auth_throttle.hpp) may delay or refuse a password login, then the exchange.
// Refusals are sent to the client as PostgreSQL would: 28000 for hba, 28P01 for a wrong
// password, 53300 for a throttled address or user.
asio::awaitable<ClientAuthResult> authenticate_client(pool::Stream& stream, IoBuffer& buf,
                                                      const wire::Limits& limits,
                                                      const Snapshot& snap,
                                                      const ClientAuthRequest& request);

}  // namespace pgshift::proxy
