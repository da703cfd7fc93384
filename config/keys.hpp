#pragma once
// The key table: every configuration key with its YAML type, default, whether SIGHUP applies
// it, and where it is stored in Config. The YAML loader (unknown keys, types, ranges),
// validate() (required keys, ranges, enum values), reload checks and the reference in
// docs/configuration.md are driven by, or tested against, this one table -- as PgBouncer
// does with its CF_ table.
//
// Key paths are patterns: "listen.port", "routes[].pool.size". The keys of an upstream
// (routes[].source and routes[].target) are declared once under the pattern "upstream".
// Thread-safety: the table is immutable; for_each_key() touches only the Config it is given.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"

namespace pgshift::config {

enum class KeyType {
  string,
  path,  // a file name; relative ones are resolved against the config file's directory
  integer,
  port,         // integer 1..65535
  duration_ms,  // integer milliseconds; the key name ends in _ms
  boolean,
  number,       // decimal number
  enumeration,  // one of KeyInfo::values
  secret,       // ${env:NAME}, ${file:PATH} or a literal
  string_list,
  mapping,       // a section: its keys are listed under KeyInfo::children()
  mapping_list,  // a list of sections (routes)
};
std::string_view to_string(KeyType t);

// The objects a key's field accessor works on while walking a Config.
struct Scope {
  Config* config = nullptr;
  Route* route = nullptr;        // inside routes[]
  Upstream* upstream = nullptr;  // inside routes[].source / routes[].target
};

// The address of the field a key is stored in (monostate for plain sections).
using FieldPtr =
    std::variant<std::monostate, std::string*, std::optional<std::string>*, int*, std::uint16_t*,
                 std::uint32_t*, bool*, double*, Millis*, std::vector<std::string>*, Secret*,
                 ClientTlsMode*, UpstreamTlsMode*, ClientAuthMethod*, PoolMode*, SyncMode*,
                 MirrorAck*, MirrorOverflow*, std::uint64_t*,
                 ControlMode*, std::vector<Route>*, Upstream*, std::optional<Upstream>*>;

struct KeyInfo {
  std::string_view path{};  // pattern: "listen.port", "upstream.tls.mode"
  KeyType type = KeyType::string;
  std::string_view default_value{};  // as the docs show it; "" = none
  bool reloadable = false;           // a SIGHUP applies a change without a restart
  bool required = false;             // must be present and non-empty
  // enumeration choices: "disable|allow|require"; for a mapping, the scalars it also
  // accepts instead of a mapping (control: target)
  std::string_view values{};
  std::int64_t min = 0, max = 0;     // inclusive range of integer, duration and number keys
  std::string_view section{};        // mappings whose keys live under another pattern
  FieldPtr (*field)(const Scope&) = nullptr;
  std::string_view description{};

  std::string_view name() const;      // "size"
  std::string_view parent() const;    // "routes[].pool"; "" at top level
  std::string_view children() const;  // pattern of a section's keys: "routes[]", "upstream"
  std::vector<std::string_view> choices() const;  // values split at '|'
};

std::span<const KeyInfo> key_table();
// The key `name` directly inside the section pattern `parent` ("" = top level).
const KeyInfo* find_key(std::string_view parent, std::string_view name);

// Calls f(key, path, field, scope) for every non-section key of every section instance in
// `c` (every route; source; target when present), with real paths such as
// "routes[1].target.tls.mode".
using KeyVisitor =
    std::function<void(const KeyInfo&, const std::string& path, FieldPtr, const Scope&)>;
void for_each_key(Config& c, const KeyVisitor& f);

// A field's value as the docs show it: "6432", "verify-full", "true"; "" for none.
std::string display(const FieldPtr& field, const KeyInfo& key);
// A numeric field's value (integer, port, duration, number); nullopt for other kinds.
std::optional<double> numeric(const FieldPtr& field);

}  // namespace pgshift::config
