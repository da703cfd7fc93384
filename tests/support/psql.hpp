#pragma once
// Runs the real psql client (PostgreSQL 15's, from pg_bindir()) like a user would:
//   psql -X -A -t -q -v ON_ERROR_STOP=1 -d CONNINFO -c SQL
// Output is unaligned, tuples only: "select 1, 2" prints "1|2". PG* environment variables
// of the caller are cleared so only the conninfo decides where psql connects.
#include <chrono>
#include <string>
#include <vector>

#include "process.hpp"

namespace pgshift::test {

// SQL travels as one argv string, so keep it under 128 KiB (Linux MAX_ARG_STRLEN); write
// bigger scripts to a file and pass {"-f", path}.
//
// Runs psql and returns its result whatever the exit code. sql may be empty when
// extra_args carry the work (e.g. {"-f", "script.sql"}).
CommandResult try_psql(const std::string& conninfo, const std::string& sql,
                       std::chrono::milliseconds timeout = std::chrono::seconds(60),
                       const std::vector<std::string>& extra_args = {});

// Runs psql and returns stdout without its trailing newline; throws std::runtime_error with
// psql's stderr if psql fails.
std::string run_psql(const std::string& conninfo, const std::string& sql,
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Environment variables that would change what libpq clients connect to.
const std::vector<std::string>& libpq_environment_variables();

}  // namespace pgshift::test
