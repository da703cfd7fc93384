#include "proxy/control/pg_schema.hpp"

#include <array>
#include <cmath>
#include <cstdio>

#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy::pgcontrol {
namespace {

using pgclient::Param;

// Migration N takes the schema from version N-1 to N. Append only; never edit a released
// one (sidecars of the older version may still be running against the same database).
constexpr std::array<std::string_view, 2> kMigrations{
    R"sql(
CREATE TABLE pgshift.routes (
  name            text PRIMARY KEY,
  phase           text NOT NULL DEFAULT 'source_only',
  previous_phase  text NOT NULL DEFAULT 'source_only',
  read_percent_bp integer NOT NULL DEFAULT 0 CHECK (read_percent_bp BETWEEN 0 AND 10000),
  epoch           bigint NOT NULL DEFAULT 0,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  op_kind         text,
  op_state        text CHECK (op_state IN ('prepare', 'committed', 'aborted')),
  op_epoch        bigint,
  op_deadline     timestamptz,
  op_drain_ms     bigint,
  op_coordinator  text,
  op_reason       text
);
CREATE TABLE pgshift.members (
  id           text PRIMARY KEY,
  version      text NOT NULL,
  address      text NOT NULL,
  routes       text[] NOT NULL DEFAULT '{}',
  applied      jsonb NOT NULL DEFAULT '{}',
  started_at   timestamptz NOT NULL DEFAULT now(),
  heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE pgshift.acks (
  route  text NOT NULL,
  epoch  bigint NOT NULL,
  member text NOT NULL,
  ok     boolean NOT NULL,
  detail text,
  held   bigint NOT NULL DEFAULT 0,
  at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (route, epoch, member)
);
CREATE TABLE pgshift.audit (
  id     bigserial PRIMARY KEY,
  at     timestamptz NOT NULL DEFAULT now(),
  route  text,
  actor  text NOT NULL,
  action text NOT NULL,
  old    jsonb,
  new    jsonb,
  result text NOT NULL
);
CREATE INDEX audit_route_at ON pgshift.audit (route, at);
)sql",
    // 2: `pgshift verify` results, read by the cutover/rollback preconditions.
    R"sql(
CREATE TABLE pgshift.verify_runs (
  id          bigserial PRIMARY KEY,
  route       text NOT NULL,
  started_at  timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  equal       boolean NOT NULL,
  tables      integer NOT NULL,
  rows        bigint NOT NULL,
  differences integer NOT NULL,
  summary     text NOT NULL
);
CREATE INDEX verify_runs_route_finished ON pgshift.verify_runs (route, finished_at);
)sql",
};

std::uint64_t to_u64(std::string_view s) {
  return s.empty() ? 0 : std::stoull(std::string(s));
}
std::int64_t to_i64(std::string_view s) {
  return s.empty() ? 0 : std::stoll(std::string(s));
}

}  // namespace

int ensure_schema(pgclient::Connection& conn) {
  // Up to date already (every start but the first): no lock, no DDL, so a control user
  // without CREATE on the database works once the schema exists.
  auto exists = conn.exec("SELECT to_regclass('pgshift.schema_version') IS NOT NULL");
  if (exists.get(0, 0) == "t") {
    auto v = conn.exec("SELECT coalesce(max(version), 0) FROM pgshift.schema_version");
    if (to_i64(v.get(0, 0)) == kSchemaVersion) return 0;
  }
  return in_transaction(conn, [&] {
    // One key for every pgshift of every version: the DDL below runs strictly one at a time.
    conn.exec("SELECT pg_advisory_xact_lock(hashtext('pgshift.schema'))");
    conn.exec("SET LOCAL client_min_messages = warning");  // no "already exists" notices
    conn.exec("CREATE SCHEMA IF NOT EXISTS pgshift");
    conn.exec(
        "CREATE TABLE IF NOT EXISTS pgshift.schema_version (version integer PRIMARY KEY, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    auto r = conn.exec("SELECT coalesce(max(version), 0) FROM pgshift.schema_version");
    const int current = static_cast<int>(to_i64(r.get(0, 0)));
    if (current > kSchemaVersion) {
      throw pgclient::Error("control schema pgshift is at version " + std::to_string(current) +
                            ", newer than this pgshift knows (" + std::to_string(kSchemaVersion) +
                            "): upgrade pgshift");
    }
    int applied = 0;
    for (int v = current + 1; v <= kSchemaVersion; ++v) {
      conn.exec(kMigrations[static_cast<std::size_t>(v - 1)]);
      conn.exec("INSERT INTO pgshift.schema_version (version) VALUES ($1)", {std::to_string(v)});
      ++applied;
    }
    if (applied > 0) {
      log_info("control schema migrated",
               {f("from_version", current), f("to_version", kSchemaVersion)});
    }
    return applied;
  });
}

const char* const kRouteColumns =
    "phase, previous_phase, read_percent_bp, epoch, "
    "(extract(epoch FROM updated_at) * 1000)::bigint, coalesce(op_kind, ''), "
    "coalesce(op_state, ''), coalesce(op_epoch, 0), "
    "coalesce((extract(epoch FROM op_deadline - now()) * 1000)::bigint, 0), "
    "coalesce(op_drain_ms, 0), coalesce(op_coordinator, ''), coalesce(op_reason, '')";

RouteRow parse_route_row(const pgclient::Result& r, int row, int c) {
  RouteRow out;
  auto& s = out.state;
  s.phase = routing::parse_phase(r.get(row, c)).value_or(config::Phase::source_only);
  s.previous_phase = routing::parse_phase(r.get(row, c + 1)).value_or(config::Phase::source_only);
  s.read_percent =
      routing::ReadPercent::from_basis_points(to_u64(r.get(row, c + 2))).value_or(s.read_percent);
  s.epoch = to_u64(r.get(row, c + 3));
  s.updated_at_ms = to_i64(r.get(row, c + 4));
  out.op_kind = r.get(row, c + 5);
  out.op_state = r.get(row, c + 6);
  out.op_epoch = to_u64(r.get(row, c + 7));
  out.op_remaining_ms = to_i64(r.get(row, c + 8));
  out.op_drain_ms = to_i64(r.get(row, c + 9));
  out.op_coordinator = r.get(row, c + 10);
  out.op_reason = r.get(row, c + 11);
  return out;
}

std::optional<RouteRow> read_route(pgclient::Connection& conn, std::string_view route, bool lock) {
  auto r = conn.exec(std::string("SELECT ") + kRouteColumns +
                         " FROM pgshift.routes WHERE name = $1" + (lock ? " FOR UPDATE" : ""),
                     {std::string(route)});
  if (r.rows() == 0) return std::nullopt;
  return parse_route_row(r, 0, 0);
}

void insert_route_if_absent(pgclient::Connection& conn, std::string_view route,
                            const routing::MigrationState& s) {
  conn.exec(
      "INSERT INTO pgshift.routes (name, phase, previous_phase, read_percent_bp, epoch) "
      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING",
      {std::string(route), std::string(routing::phase_name(s.phase)),
       std::string(routing::phase_name(s.previous_phase)),
       std::to_string(s.read_percent.basis_points()), std::to_string(s.epoch)});
}

void write_state(pgclient::Connection& conn, std::string_view route,
                 const routing::MigrationState& s, std::string_view op_state) {
  conn.exec(
      "UPDATE pgshift.routes SET phase = $2, previous_phase = $3, read_percent_bp = $4, "
      "epoch = $5, updated_at = now(), op_state = coalesce($6, op_state) WHERE name = $1",
      {std::string(route), std::string(routing::phase_name(s.phase)),
       std::string(routing::phase_name(s.previous_phase)),
       std::to_string(s.read_percent.basis_points()), std::to_string(s.epoch),
       op_state.empty() ? Param{} : Param{std::string(op_state)}});
}

bool abort_operation(pgclient::Connection& conn, std::string_view route, std::uint64_t op_epoch,
                     std::string_view reason) {
  auto r = conn.exec(
      "UPDATE pgshift.routes SET op_state = 'aborted', op_reason = $3 "
      "WHERE name = $1 AND op_state = 'prepare' AND op_epoch = $2",
      {std::string(route), std::to_string(op_epoch), std::string(reason)});
  return r.affected_rows() > 0;
}

std::string state_json(const routing::MigrationState& s) {
  char pct[32];
  std::snprintf(pct, sizeof pct, "%.2f", s.read_percent.as_double());
  return std::string("{\"phase\":\"") + std::string(routing::phase_name(s.phase)) +
         "\",\"read_percent\":" + pct + ",\"epoch\":" + std::to_string(s.epoch) + "}";
}

void audit(pgclient::Connection& conn, std::string_view route, std::string_view actor,
           std::string_view action, const std::optional<std::string>& old_json,
           const std::optional<std::string>& new_json, std::string_view result) {
  conn.exec(
      "INSERT INTO pgshift.audit (route, actor, action, old, new, result) "
      "VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6)",
      {std::string(route), std::string(actor), std::string(action), old_json, new_json,
       std::string(result)});
}

void notify(pgclient::Connection& conn, std::string_view channel, std::string_view route) {
  conn.exec("SELECT pg_notify($1, $2)", {std::string(channel), std::string(route)});
}

}  // namespace pgshift::proxy::pgcontrol
