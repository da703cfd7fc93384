#include "proxy/session/exclusive_ddl.hpp"

#include <algorithm>
#include <cstring>

#include "proxy/telemetry/log.hpp"
#include "routing/database_ddl.hpp"
#include "wire/message_types.hpp"

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

// Case-insensitive search for a lower-case word: a cheap filter before the lexer runs.
bool mentions(std::string_view sql, std::string_view word) {
  return std::search(sql.begin(), sql.end(), word.begin(), word.end(), [](char a, char b) {
           return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
         }) != sql.end();
}

std::string_view query_text(std::uint8_t type, std::span<const std::uint8_t> body) {
  if (type == wire::fe::query) return c_string(body, 0);
  if (type == wire::fe::parse) return c_string(body, c_string(body, 0).size() + 1);
  return {};
}

}  // namespace

void free_databases_for_sql(pool::PoolRegistry& registry, std::string_view sql,
                            std::uint64_t session) {
  if (!mentions(sql, "database")) return;
  for (const std::string& db : routing::databases_needing_exclusive_access(sql)) {
    const std::size_t pools = registry.drop_idle(db);
    log_info("closing idle server connections before a statement that needs the database alone",
             {f("session", session), f("database", db), f("pools", pools)});
  }
}

void free_databases_for_message(pool::PoolRegistry& registry, std::uint8_t type,
                                std::span<const std::uint8_t> body, std::uint64_t session) {
  if (type == wire::fe::query || type == wire::fe::parse)
    free_databases_for_sql(registry, query_text(type, body), session);
}

bool leaves_lasting_state(std::string_view sql) {
  if (!mentions(sql, "load") && !mentions(sql, "prepare")) return false;
  return routing::outlives_discard_all(sql);
}

bool leaves_lasting_state(std::uint8_t type, std::span<const std::uint8_t> body) {
  return (type == wire::fe::query || type == wire::fe::parse) &&
         leaves_lasting_state(query_text(type, body));
}

}  // namespace pgshift::proxy
