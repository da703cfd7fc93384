#pragma once
// Where `pgshift verify` leaves its result for the cutover/rollback preconditions
// (docs/cutover.md, "Preconditions"): a row of pgshift.verify_runs in the control database
// when the config has one (control: target or a database of its own), else, in file mode,
// the latest run per route in <state_file>.verify.json (written atomically). Only counts and
// a one-line summary are recorded: no keys, no row data, no secrets.
//
// Times are unix milliseconds. In the control database finished_at is the database's now()
// when the run is recorded, the clock of pgshift.routes.updated_at it is compared with.
//
// Blocking (libpq, file I/O): CLI commands and coordinator threads only, never an I/O thread.
#include <cstdint>
#include <optional>
#include <string>

#include "config/config.hpp"

namespace pgshift::migrate {

struct VerifyRun {
  std::string route;
  std::int64_t started_at_ms = 0, finished_at_ms = 0;
  bool equal = false;
  int tables = 0;
  std::int64_t rows = 0;
  int differences = 0;  // tables that differ or could not be verified
  std::string summary;  // the last line verify printed
};

// What the cutover/rollback preconditions read: the latest run and when the sync of the
// route was last started (0: not recorded), both in the clock described above.
struct VerifyRecord {
  std::optional<VerifyRun> latest;
  std::int64_t sync_started_at_ms = 0;
};

// Records `run`; returns where ("control database host:port/db" or the file's path).
// Throws std::runtime_error (naming the database or file) when it cannot.
std::string record_verify_run(const config::Config& cfg, const VerifyRun& run);

// Records that `pgshift sync start` (re)started the route's stream now: a verify run that
// finished before it no longer counts. In the control database a pgshift.audit row (action
// sync_start). Returns where; throws std::runtime_error when it cannot.
std::string record_sync_start(const config::Config& cfg, const std::string& route);

// The latest recorded run of `route` (by finished_at) and its last sync start. Throws
// std::runtime_error when the place they are recorded in cannot be read.
VerifyRecord read_verify_record(const config::Config& cfg, const std::string& route);

// "<state_file>.verify.json": the file of file mode.
std::string verify_file_path(const config::Config& cfg);

}  // namespace pgshift::migrate
