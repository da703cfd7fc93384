#pragma once
// YAML -> Config. Every problem is reported (not just the first), each with its YAML path
// (e.g. "routes[1].target.tls.mode") and 1-based line. Exceptions only here (startup/reload),
// never on the data path.
//
// Key scheme (see docs/configuration.md and config/keys.cpp): snake_case keys mirroring the
// Config fields; enums as lowercase strings with dashes ("verify-full"); durations as
// integer milliseconds in keys ending in "_ms". Relative file paths are resolved against the
// directory of the config file (load_file) or left as written (load_string).
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pgshift::config {

struct ConfigError {
  std::string path;  // "routes[0].source.port"
  int line = 0;      // 1-based, 0 if unknown
  std::string message;
  std::string to_string() const;  // "routes[0].source.port (line 12): must be 1..65535"
};

struct LoadResult {
  ConfigPtr config;  // null if there were errors
  std::vector<ConfigError> errors;
  bool ok() const { return config != nullptr; }
};

// Parses, fills defaults, resolves secrets, validates. `source_name` is used in messages.
LoadResult load_file(const std::string& path);
LoadResult load_string(const std::string& yaml, const std::string& source_name = "<string>");

// YAML path -> 1-based line of the key, as recorded by the loader ("routes[1].target" -> 14).
using SourceLines = std::map<std::string, int, std::less<>>;
// Line of `path`, or of its nearest recorded ancestor; 0 if none.
int line_of(const SourceLines& lines, std::string_view path);

// Semantic checks of an already-built Config (also run by load_*): ports, required files,
// duplicate route names/databases, TLS settings, pool sizes...
std::vector<ConfigError> validate(const Config& c);
// The same, with lines for the messages taken from `lines`.
std::vector<ConfigError> validate(const Config& c, const SourceLines& lines);

// Keys whose change a reload (SIGHUP) cannot apply, e.g. {"listen.port",
// "routes[auth].pool.mode"}; routes are matched by name. Empty = `next` can be swapped in.
std::vector<std::string> restart_required_changes(const Config& current, const Config& next);

// What a reload does with those keys: sets each one in `next` back to its running value
// (routes matched by name; a new route takes its configured values) and returns what it
// undid, so the caller can warn, naming the key.
struct KeptValue {
  std::string path;        // "admin.port", "routes[auth].pool.mode"
  std::string running;     // the value kept, as the docs show it
  std::string configured;  // the value in the new file, applied at the next restart
};
std::vector<KeptValue> keep_restart_only_values(const Config& running, Config& next);

}  // namespace pgshift::config
