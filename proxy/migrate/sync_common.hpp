#pragma once
// What `pgshift sync` and `pgshift verify` share: the two sides of a route as libpq
// settings, the route's table list, findings and a few catalog helpers.
//
// Everything here blocks (pgclient): CLI commands and the lag monitor's own thread only.
#include <cstdint>
#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/migrate/names.hpp"
#include "proxy/pgclient/connection.hpp"

namespace pgshift::migrate {

// A mistake the user can fix (bad route, missing credentials...): printed as is, exit 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct SyncSides {
  const config::Route* route = nullptr;
  pgclient::ConnInfo source, target;
  // The source as the TARGET server reaches it (sync.publisher_host/port), for the
  // subscription's CONNECTION string.
  pgclient::ConnInfo publisher;
  std::string publication, subscription;  // names.hpp, forward direction
};

// The sides of `route_name` in `config`; throws UsageError naming the key to fix (unknown
// route, no target, passthrough credentials, no database name).
SyncSides sync_sides(const config::Config& config, const std::string& route_name);

struct TableRef {
  std::string schema, name;
  std::string qualified() const;  // quoted: "public"."t"
  std::string display() const;    // schema.name
  bool operator<(const TableRef& o) const {
    return schema != o.schema ? schema < o.schema : name < o.name;
  }
  bool operator==(const TableRef& o) const = default;
};

// SQL condition on pg_class c / pg_namespace n: a user table of the route. Ordinary and
// partitioned tables outside pgshift, pg_catalog, information_schema, pg_toast; partitions
// are left to their root (publish_via_partition_root).
std::string user_table_condition();

// The route's tables as they exist on `conn`: sync.tables (each must exist: UsageError
// otherwise) or every permanent user table. Sorted.
std::vector<TableRef> route_tables(pgclient::Connection& conn, const config::Route& route);

enum class Severity { ok, info, warning, blocker };
std::string_view to_string(Severity s);

// One line of `sync check`: what was found and how to fix it.
struct Finding {
  Severity severity = Severity::info;
  std::string side;  // "source", "target", "both"
  std::string text;
  std::string fix;  // empty when nothing to do
};
void print_finding(std::ostream& out, const Finding& f);

// True when stdout is a terminal (progress bars) -- plain lines otherwise.
bool stdout_is_tty();

// Seconds as "1m05s" / "12s" for progress lines.
std::string format_duration(double seconds);
std::string format_bytes(double bytes);

// Runs argv (searched in PATH) with extra environment entries ("PGPASSWORD=..."), stdout to
// `stdout_file` (empty: inherited); returns the exit status, or throws when it cannot start.
int run_process(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                const std::string& stdout_file = {});

// The steady clock in milliseconds (the clock of WriteMark and SyncPosition).
std::int64_t steady_ms();

}  // namespace pgshift::migrate
