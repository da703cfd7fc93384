#pragma once
// Chooses the route for a client's (database, user) and builds the upstream connection
// parameters for one side of it.
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/users.hpp"
#include "pool/upstream.hpp"
#include "proxy/runtime/runtime.hpp"

namespace pgshift::proxy {

// Exact database + user first, then exact database, then "*". Null if none matches.
const RouteRuntime* select_route(const Snapshot& snap, const std::string& database,
                                 const std::string& user);

struct ClientIdentity {
  std::string user;
  std::string database;
  std::vector<std::pair<std::string, std::string>> startup_params;  // forwarded upstream
  const config::UserEntry* user_entry = nullptr;
  std::optional<std::array<std::uint8_t, 32>> scram_client_key;
};

// Null with `error` set when passthrough credentials cannot be formed.
std::shared_ptr<const pool::UpstreamParams> make_upstream_params(
    const config::Upstream& side, const std::shared_ptr<asio::ssl::context>& tls,
    const ClientIdentity& client, std::string& error);

}  // namespace pgshift::proxy
