#pragma once
// YAML -> Config. Every problem is reported (not just the first), each with its YAML path
// (e.g. "routes[1].target.tls.mode") and 1-based line. Exceptions only here (startup/reload),
// never on the data path.
#include <string>
#include <vector>

#include "config/config.hpp"

namespace pgshift::config {

struct ConfigError {
  std::string path;   // "routes[0].source.port"
  int line = 0;       // 1-based, 0 if unknown
  std::string message;
  std::string to_string() const;  // "routes[0].source.port (line 12): must be 1..65535"
};

struct LoadResult {
  ConfigPtr config;                 // null if there were errors
  std::vector<ConfigError> errors;
  bool ok() const { return config != nullptr; }
};

// Parses, fills defaults, resolves secrets, validates. `source_name` is used in messages.
LoadResult load_file(const std::string& path);
LoadResult load_string(const std::string& yaml, const std::string& source_name = "<string>");

// Semantic checks of an already-built Config (also run by load_*): ports, required files,
// duplicate route names/databases, TLS settings, pool sizes...
std::vector<ConfigError> validate(const Config& c);

}  // namespace pgshift::config
