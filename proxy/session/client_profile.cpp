#include "proxy/session/client_profile.hpp"

#include <cstring>
#include <string>
#include <unordered_map>

namespace pgshift::proxy {
namespace {

// Every value of a profile, length-prefixed (so no two profiles share a key).
std::string key_of(const ClientProfile& p) {
  std::string key;
  auto add = [&key](std::string_view v) {
    const auto n = static_cast<std::uint32_t>(v.size());
    key.append(reinterpret_cast<const char*>(&n), sizeof n);
    key.append(v);
  };
  const ClientIdentity& id = p.identity;
  add(id.user);
  add(id.database);
  const void* entry = id.user_entry;
  add(std::string_view(reinterpret_cast<const char*>(&entry), sizeof entry));
  for (const auto& [k, v] : id.startup_params) {
    add(k);
    add(v);
  }
  return key;  // `tracked` follows from startup_params
}

struct Table {
  std::unordered_map<std::string, std::weak_ptr<ClientProfile>> by_key;
  std::size_t next_purge = 64;
};

}  // namespace

std::shared_ptr<ClientProfile> ClientProfile::intern(std::shared_ptr<ClientProfile> built) {
  // Passthrough credentials stay with their session: no table holds a client's key.
  if (built->identity.scram_client_key) return built;
  thread_local Table table;
  std::string key = key_of(*built);
  if (auto it = table.by_key.find(key); it != table.by_key.end()) {
    if (auto shared = it->second.lock()) return shared;
    it->second = built;
    return built;
  }
  if (table.by_key.size() >= table.next_purge) {
    std::erase_if(table.by_key, [](const auto& kv) { return kv.second.expired(); });
    table.next_purge = 2 * table.by_key.size() + 64;
  }
  table.by_key.emplace(std::move(key), built);
  return built;
}

}  // namespace pgshift::proxy
