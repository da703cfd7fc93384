#include "proxy/session/exclusive_ddl.hpp"

#include <algorithm>
#include <cstring>

#include "proxy/telemetry/log.hpp"
#include "routing/database_ddl.hpp"

namespace pgshift::proxy {
namespace {

// The text up to the first NUL (or the end), from `at`.
std::string_view c_string(std::span<const std::uint8_t> body, std::size_t at) {
  if (at >= body.size()) return {};
  const auto* begin = reinterpret_cast<const char*>(body.data()) + at;
  const std::size_t left = body.size() - at;
  const void* nul = std::memchr(begin, 0, left);
  return {begin, nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - begin) : left};
}

bool mentions_database(std::string_view sql) {
  constexpr std::string_view kWord = "database";
  return std::search(sql.begin(), sql.end(), kWord.begin(), kWord.end(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
         }) != sql.end();
}

}  // namespace

void free_databases_for_sql(pool::PoolRegistry& registry, std::string_view sql,
                            std::uint64_t session) {
  if (!mentions_database(sql)) return;
  for (const std::string& db : routing::databases_needing_exclusive_access(sql)) {
    const std::size_t pools = registry.drop_idle(db);
    log_info("closing idle server connections before a statement that needs the database alone",
             {f("session", session), f("database", db), f("pools", pools)});
  }
}

void free_databases_for_message(pool::PoolRegistry& registry, std::uint8_t type,
                                std::span<const std::uint8_t> body, std::uint64_t session) {
  if (type == 'Q') {
    free_databases_for_sql(registry, c_string(body, 0), session);
  } else if (type == 'P') {
    const std::string_view name = c_string(body, 0);
    free_databases_for_sql(registry, c_string(body, name.size() + 1), session);
  }
}

}  // namespace pgshift::proxy
