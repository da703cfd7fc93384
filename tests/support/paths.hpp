#pragma once
// Where the tools the integration tests need live. Each has an environment override so a
// test binary also runs outside ctest.
#include <filesystem>
#include <string_view>

namespace pgshift::test {

// $PGSHIFT_SOURCE_DIR (set by ctest) or the source tree this library was configured from.
std::filesystem::path source_dir();

// $PGSHIFT_BIN (set by ctest for INTEGRATION tests) or the pgshift target of this build tree.
std::filesystem::path pgshift_binary();

// $PG_BINDIR or /usr/lib/postgresql/15/bin (Debian's postgresql-15; pg_config on PATH may be
// libpq-dev's and point elsewhere).
std::filesystem::path pg_bindir();

// pg_bindir() / name, e.g. pg_tool("pgbench").
std::filesystem::path pg_tool(std::string_view name);

// Debian's /usr/bin/python3, the one python3-psycopg2 is installed for ($PGSHIFT_PYTHON
// overrides). python3 on PATH may be another interpreter (pyenv) without psycopg2.
std::filesystem::path system_python();

}  // namespace pgshift::test
