#include "proxy/migrate/verify_record.hpp"

#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "proxy/control/pg_schema.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/pgclient/connection.hpp"

namespace pgshift::migrate {
namespace {

namespace json = boost::json;

pgclient::Connection control_connection(const config::Upstream& up) {
  auto info = pgclient::conninfo_for(up);
  info.application_name = "pgshift-verify";
  auto conn = pgclient::Connection::connect(info);
  proxy::pgcontrol::ensure_schema(conn);
  return conn;
}

json::object to_json(const VerifyRun& r) {
  return json::object{{"route", r.route},
                      {"started_at_ms", r.started_at_ms},
                      {"finished_at_ms", r.finished_at_ms},
                      {"equal", r.equal},
                      {"tables", r.tables},
                      {"rows", r.rows},
                      {"differences", r.differences},
                      {"summary", r.summary}};
}

VerifyRun from_json(const json::object& o) {
  VerifyRun r;
  r.route = json::value_to<std::string>(o.at("route"));
  r.started_at_ms = o.at("started_at_ms").to_number<std::int64_t>();
  r.finished_at_ms = o.at("finished_at_ms").to_number<std::int64_t>();
  r.equal = o.at("equal").as_bool();
  r.tables = o.at("tables").to_number<int>();
  r.rows = o.at("rows").to_number<std::int64_t>();
  r.differences = o.at("differences").to_number<int>();
  r.summary = json::value_to<std::string>(o.at("summary"));
  return r;
}

// The file's runs by route; an empty object when the file does not exist.
json::object read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return {};
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  auto v = json::parse(ss.str(), ec);
  if (ec || !v.is_object() || !v.as_object().contains("routes") ||
      !v.as_object().at("routes").is_object()) {
    throw std::runtime_error(path + " is not a verify record (delete it and run pgshift verify)");
  }
  return v.as_object().at("routes").as_object();
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string actor() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = 0;
  return std::string("cli@") + (host[0] ? host : "unknown");
}

// Reads, changes and atomically rewrites one route's entry of the file.
template <typename Change>
std::string update_file(const config::Config& cfg, const std::string& route, Change&& change) {
  const std::string path = verify_file_path(cfg);
  json::object routes = read_file(path);
  json::value& entry = routes[route];
  if (!entry.is_object()) entry = json::object{};
  change(entry.as_object());
  if (auto err = proxy::write_file_atomically(
          path, json::serialize(json::object{{"routes", std::move(routes)}}) + "\n");
      !err.empty()) {
    throw std::runtime_error("cannot write " + path + ": " + err);
  }
  return path;
}

}  // namespace

std::string verify_file_path(const config::Config& cfg) {
  return cfg.state_file + ".verify.json";
}

std::string record_verify_run(const config::Config& cfg, const VerifyRun& run) {
  if (auto up = config::control_upstream(cfg)) {
    auto conn = control_connection(*up);
    // finished_at in the database's clock (that of pgshift.routes.updated_at).
    conn.exec(
        "INSERT INTO pgshift.verify_runs (route, started_at, finished_at, equal, tables, rows, "
        "differences, summary) VALUES ($1, now() - make_interval(secs => $2::double precision "
        "/ 1000), now(), $3, $4, $5, $6, $7)",
        {run.route, std::to_string(run.finished_at_ms - run.started_at_ms),
         run.equal ? "true" : "false", std::to_string(run.tables), std::to_string(run.rows),
         std::to_string(run.differences), run.summary});
    return "control database " + pgclient::describe(conn.info()) + " (pgshift.verify_runs)";
  }
  return update_file(cfg, run.route, [&](json::object& e) { e["latest"] = to_json(run); });
}

std::string record_sync_start(const config::Config& cfg, const std::string& route) {
  if (auto up = config::control_upstream(cfg)) {
    auto conn = control_connection(*up);
    proxy::pgcontrol::audit(conn, route, actor(), "sync_start", std::nullopt, std::nullopt, "ok");
    return "control database " + pgclient::describe(conn.info()) + " (pgshift.audit)";
  }
  return update_file(cfg, route, [&](json::object& e) { e["sync_started_at_ms"] = unix_ms_now(); });
}

VerifyRecord read_verify_record(const config::Config& cfg, const std::string& route) {
  VerifyRecord rec;
  if (auto up = config::control_upstream(cfg)) {
    auto conn = control_connection(*up);
    auto s = conn.exec(
        "SELECT coalesce((extract(epoch FROM max(at)) * 1000)::bigint, 0) FROM pgshift.audit "
        "WHERE route = $1 AND action = 'sync_start'",
        {route});
    rec.sync_started_at_ms = std::stoll(std::string(s.get(0, 0)));
    auto r = conn.exec(
        "SELECT (extract(epoch FROM started_at) * 1000)::bigint, "
        "(extract(epoch FROM finished_at) * 1000)::bigint, equal, tables, rows, differences, "
        "summary FROM pgshift.verify_runs WHERE route = $1 ORDER BY finished_at DESC, id DESC "
        "LIMIT 1",
        {route});
    if (r.rows() == 0) return rec;
    VerifyRun& v = rec.latest.emplace();
    v.route = route;
    v.started_at_ms = std::stoll(std::string(r.get(0, 0)));
    v.finished_at_ms = std::stoll(std::string(r.get(0, 1)));
    v.equal = r.get(0, 2) == "t";
    v.tables = std::stoi(std::string(r.get(0, 3)));
    v.rows = std::stoll(std::string(r.get(0, 4)));
    v.differences = std::stoi(std::string(r.get(0, 5)));
    v.summary = std::string(r.get(0, 6));
    return rec;
  }
  const auto routes = read_file(verify_file_path(cfg));
  auto it = routes.find(route);
  if (it == routes.end() || !it->value().is_object()) return rec;
  const auto& e = it->value().as_object();
  if (auto* s = e.if_contains("sync_started_at_ms"))
    rec.sync_started_at_ms = s->to_number<std::int64_t>();
  if (auto* l = e.if_contains("latest"); l && l->is_object())
    rec.latest = from_json(l->as_object());
  return rec;
}

}  // namespace pgshift::migrate
