#pragma once
// Authenticates a client to pgshift (SCRAM-SHA-256, md5 or trust) against the users file.
// On failure the client has been sent the same FATAL error PostgreSQL would send (28P01 for
// a wrong password, 28000 for other refusals); the caller closes the connection.
#include <array>
#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>

#include "config/config.hpp"
#include "config/users.hpp"
#include "proxy/session/message_io.hpp"

namespace pgshift::proxy {

struct ClientAuthResult {
  bool ok = false;
  std::string failure;  // for the log: why (never a password)
  // The user's entry in the users file (null for trust without an entry).
  const config::UserEntry* entry = nullptr;
  // SCRAM passthrough: ClientKey recovered from the client's proof.
  std::optional<std::array<std::uint8_t, 32>> scram_client_key;
};

asio::awaitable<ClientAuthResult> authenticate_client(pool::Stream& stream, IoBuffer& buf,
                                                      const wire::Limits& limits,
                                                      config::ClientAuthMethod method,
                                                      const config::UsersFile* users,
                                                      const std::string& user);

}  // namespace pgshift::proxy
