#pragma once
// YAML text -> Config, driven by the key table (keys.hpp): unknown keys, duplicate keys,
// wrong types and out-of-range values are reported with path and line; values that fail
// keep their defaults. No file access, no secrets, no semantic checks (load.cpp and
// validate.cpp do those).
#include <string>
#include <vector>

#include "config/config.hpp"
#include "config/load.hpp"

namespace pgshift::config {

struct ParseOutput {
  Config config;
  SourceLines lines;  // every key seen -> its line
  std::vector<ConfigError> errors;
  // The text is not a usable configuration at all (not YAML, or not a mapping): the errors
  // say why and nothing else is worth checking.
  bool unusable = false;
};

ParseOutput parse_yaml(const std::string& text, const std::string& source_name);

}  // namespace pgshift::config
