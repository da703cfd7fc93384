#pragma once
// The control plane's tables in the control database (docs/control-plane.md, "Schema"), and
// the SQL both the sidecars' control thread (PgStateStore) and coordinators (PgFleet) run on
// them. Everything here blocks on a pgclient::Connection: control thread or CLI only.
//
// Nothing secret is ever written here: actors are token ids ("admin:1a2b3c4d@peer") or
// "cli@host", never a token or a password.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/pgclient/connection.hpp"
#include "routing/migration_state.hpp"

namespace pgshift::proxy::pgcontrol {

inline constexpr std::string_view kStateChannel = "pgshift_state";  // payload: route name
inline constexpr std::string_view kAckChannel = "pgshift_ack";      // payload: route name
inline constexpr int kSchemaVersion = 2;

// Creates or migrates schema pgshift to kSchemaVersion. Idempotent and safe when many
// sidecars start at once: every step runs in one transaction under a transaction-level
// advisory lock. Returns the migrations applied by this call (0 when up to date). Throws
// pgclient::Error; a schema newer than this build is an error naming both versions.
int ensure_schema(pgclient::Connection& conn);

// One row of pgshift.routes.
struct RouteRow {
  routing::MigrationState state;
  std::string op_kind, op_state, op_coordinator, op_reason;  // op_state "" when none ever
  std::uint64_t op_epoch = 0;
  std::int64_t op_remaining_ms = 0;  // op_deadline - now() in the database's clock
  std::int64_t op_drain_ms = 0;
  bool op_open() const { return op_state == "prepare" && op_remaining_ms > 0; }
  bool op_stale() const { return op_state == "prepare" && op_remaining_ms <= 0; }
};

// Columns for parse_route_row(), in its order.
extern const char* const kRouteColumns;
RouteRow parse_route_row(const pgclient::Result& r, int row, int first_column);

// The route's row, locked FOR UPDATE when `lock` (inside a transaction); nullopt if absent.
std::optional<RouteRow> read_route(pgclient::Connection& conn, std::string_view route, bool lock);
// Inserts the route at `initial` unless it exists.
void insert_route_if_absent(pgclient::Connection& conn, std::string_view route,
                            const routing::MigrationState& initial);
// Writes phase, previous_phase, read percent, epoch and updated_at = now(); `op_state`
// non-empty also sets it (the commit of a barrier operation).
void write_state(pgclient::Connection& conn, std::string_view route,
                 const routing::MigrationState& s, std::string_view op_state = {});
// Marks an open operation aborted (only if still prepare at `op_epoch`); true if it was.
bool abort_operation(pgclient::Connection& conn, std::string_view route, std::uint64_t op_epoch,
                     std::string_view reason);

// {"phase":..., "read_percent":12.5, "epoch":3} for the audit's old/new columns.
std::string state_json(const routing::MigrationState& s);
void audit(pgclient::Connection& conn, std::string_view route, std::string_view actor,
           std::string_view action, const std::optional<std::string>& old_json,
           const std::optional<std::string>& new_json, std::string_view result);
void notify(pgclient::Connection& conn, std::string_view channel, std::string_view route);

// Runs `body` between BEGIN and COMMIT; ROLLBACK (and rethrow) when it throws.
template <class F>
auto in_transaction(pgclient::Connection& conn, F&& body) {
  conn.exec("BEGIN");
  try {
    if constexpr (std::is_void_v<decltype(body())>) {
      body();
      conn.exec("COMMIT");
    } else {
      auto r = body();
      conn.exec("COMMIT");
      return r;
    }
  } catch (...) {
    try {
      if (conn.ok()) conn.exec("ROLLBACK");
    } catch (...) {
    }
    throw;
  }
}

}  // namespace pgshift::proxy::pgcontrol
