#include "pool/server_params.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace pgshift::pool {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An E'' literal: correct whatever standard_conforming_strings is.
void append_literal(std::string& out, std::string_view value) {
  out += "E'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += c;
    out += c;
  }
  out += '\'';
}

const std::string* find(const StartupParams& params, const std::string& name) {
  for (const auto& [k, v] : params) {
    if (k == name) return &v;
  }
  return nullptr;
}

}  // namespace

bool is_keyed_parameter(std::string_view name) {
  // `options`, and the PGC_BACKEND / PGC_SU_BACKEND settings of PostgreSQL 15 (and the
  // preload lists, read at backend start): set_config() refuses or ignores them later.
  static constexpr std::array<std::string_view, 10> kKeyed = {"options",
                                                              "log_connections",
                                                              "log_disconnections",
                                                              "post_auth_delay",
                                                              "ignore_system_indexes",
                                                              "jit_debugging_support",
                                                              "jit_profiling_support",
                                                              "local_preload_libraries",
                                                              "session_preload_libraries",
                                                              "replication"};
  const std::string n = lower(name);
  return std::find(kKeyed.begin(), kKeyed.end(), n) != kKeyed.end();
}

std::string pool_key_parameters(const StartupParams& startup) {
  std::vector<std::string> keyed, names;
  for (const auto& [k, v] : startup) {
    if (is_keyed_parameter(k)) {
      keyed.push_back(lower(k) + '=' + v);
    } else {
      names.push_back(lower(k));
    }
  }
  std::sort(keyed.begin(), keyed.end());
  std::sort(names.begin(), names.end());
  std::string out;
  for (const auto& s : keyed) out += s + '\0';
  out += '\x01';  // keyed values, then tracked names
  for (const auto& s : names) out += s + '\0';
  return out;
}

StartupParams tracked_parameters(const StartupParams& startup) {
  StartupParams out;
  for (const auto& [k, v] : startup) {
    if (is_keyed_parameter(k)) continue;
    std::string name = lower(k);
    // A name sent twice: the server keeps the last value.
    std::erase_if(out, [&](const auto& p) { return p.first == name; });
    out.emplace_back(std::move(name), v);
  }
  return out;
}

std::string parameter_sync_statement(const ParameterState& state, const StartupParams& wanted) {
  std::string sql;
  auto add = [&](const std::string& name, const std::string* value) {
    sql += sql.empty() ? "SELECT pg_catalog.set_config(" : ", pg_catalog.set_config(";
    append_literal(sql, name);
    sql += ", ";
    if (value) {
      append_literal(sql, *value);
    } else {
      sql += "NULL";
    }
    sql += ", false)";
  };
  for (const auto& [k, v] : wanted) {
    const std::string* have = find(state.current, k);
    if (!have || *have != v) add(k, &v);
  }
  for (const auto& [k, v] : state.current) {
    if (!find(wanted, k)) add(k, nullptr);
  }
  return sql;
}

bool needs_parameter_sync(const ParameterState& state, const StartupParams& wanted) {
  if (state.unknown || state.current.size() != wanted.size()) return true;
  for (const auto& [k, v] : wanted) {
    const std::string* have = find(state.current, k);
    if (!have || *have != v) return true;
  }
  return false;  // same size and every wanted name present: no extra names either
}

void apply_parameter_sync(ParameterState& state, const StartupParams& wanted) {
  state.current = wanted;
}

}  // namespace pgshift::pool
