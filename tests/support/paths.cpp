#include "paths.hpp"

#include <cstdlib>
#include <string>

namespace pgshift::test {

namespace {

std::filesystem::path env_or(const char* name, std::string_view fallback) {
  const char* value = std::getenv(name);
  if (value != nullptr && *value != '\0') return value;
  return std::filesystem::path(std::string(fallback));
}

}  // namespace

std::filesystem::path source_dir() {
  return env_or("PGSHIFT_SOURCE_DIR", PGSHIFT_TEST_DEFAULT_SOURCE_DIR);
}

std::filesystem::path pgshift_binary() {
  return env_or("PGSHIFT_BIN", PGSHIFT_TEST_DEFAULT_PGSHIFT_BIN);
}

std::filesystem::path pg_bindir() {
  return env_or("PG_BINDIR", "/usr/lib/postgresql/15/bin");
}

std::filesystem::path pg_tool(std::string_view name) {
  return pg_bindir() / std::string(name);
}

std::filesystem::path system_python() {
  return env_or("PGSHIFT_PYTHON", "/usr/bin/python3");
}

}  // namespace pgshift::test
