#include "proxy/runtime/route_select.hpp"

#include "wire/auth.hpp"

namespace pgshift::proxy {

const RouteRuntime* select_route(const Snapshot& snap, const std::string& database,
                                 const std::string& user) {
  const RouteRuntime* by_db = nullptr;
  const RouteRuntime* wildcard = nullptr;
  for (const auto& rr : snap.routes) {
    const auto& r = *rr.route;
    if (r.client_user && *r.client_user != user) continue;
    if (r.client_database == database) {
      if (r.client_user) return &rr;
      if (!by_db) by_db = &rr;
    } else if (r.client_database == "*" && !wildcard) {
      wildcard = &rr;
    }
  }
  return by_db ? by_db : wildcard;
}

std::shared_ptr<const pool::UpstreamParams> make_upstream_params(
    const config::Upstream& side, const std::shared_ptr<asio::ssl::context>& tls,
    const ClientIdentity& client, std::string& error) {
  auto p = std::make_shared<pool::UpstreamParams>();
  p->host = side.host;
  p->port = side.port;
  p->database = side.database.empty() ? client.database : side.database;
  p->tls_mode = side.tls.mode;
  p->tls_server_name = side.tls.server_name.empty() ? side.host : side.tls.server_name;
  p->tls_context = tls;
  p->connect_timeout = side.connect_timeout;
  p->startup_params = client.startup_params;
  if (!side.passthrough) {
    p->credentials.user = side.user;
    p->credentials.password = side.password.value();
    return p;
  }
  p->credentials.user = client.user;
  if (!client.user_entry) {
    error = "passthrough credentials need user \"" + client.user + "\" in the users file";
    return nullptr;
  }
  const std::string& stored = client.user_entry->password;
  if (stored.starts_with("SCRAM-SHA-256$")) {
    auto secret = wire::parse_scram_secret(stored);
    if (!secret || !client.scram_client_key) {
      error = "passthrough with a SCRAM secret needs the client to authenticate with SCRAM";
      return nullptr;
    }
    p->credentials.scram_client_key = client.scram_client_key;
    p->credentials.scram_server_key = secret->server_key;
  } else {
    p->credentials.password = stored;  // plaintext, or an md5 hash (md5 upstreams only)
  }
  return p;
}

}  // namespace pgshift::proxy
