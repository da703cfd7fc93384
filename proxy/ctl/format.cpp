#include "proxy/ctl/format.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <ostream>

#include "pool/pool_stats.hpp"

namespace pgshift::proxy {
namespace {

namespace json = boost::json;

const json::value* member(const json::value& v, std::string_view key) {
  if (!v.is_object()) return nullptr;
  return v.get_object().if_contains(key);
}

const json::value* member(const json::value* v, std::string_view key) {
  return v ? member(*v, key) : nullptr;
}

std::string health_text(const json::value* side) {
  if (!side || side->is_null()) return "none";
  return text_of(member(member(side, "health"), "status"));
}

std::string address_text(const json::value* side) {
  if (!side || side->is_null()) return "-";
  std::string s = text_of(member(side, "host")) + ":" + text_of(member(side, "port"));
  const auto* db = member(side, "database");
  s += "/" + (db && db->is_string() ? text_of(db) : std::string("(client's database)"));
  return s;
}

// "healthy (login, checked 2024-...Z)" or "unhealthy: <error>".
std::string health_detail(const json::value* side) {
  if (!side || side->is_null()) return "none";
  const auto* h = member(side, "health");
  std::string s = text_of(member(h, "status"));
  const auto* error = member(h, "error");
  if (error && error->is_string()) s += ": " + text_of(error);
  const auto* checked = member(h, "checked_at");
  if (checked && checked->is_string()) {
    s += " (" + text_of(member(h, "check")) + " check at " + text_of(checked) + ")";
  }
  return s;
}

}  // namespace

std::string text_of(const json::value* v) {
  if (!v || v->is_null()) return "-";
  if (v->is_string()) return std::string(v->get_string());
  return json::serialize(*v);
}

std::string format_percent(const json::value* v) {
  if (!v || !v->is_number()) return "-";
  char buf[32];
  auto [end, ec] =
      std::to_chars(buf, buf + sizeof buf, v->to_number<double>(), std::chars_format::fixed, 2);
  return ec == std::errc{} ? std::string(buf, end) : "-";
}

void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

void print_routes(std::ostream& out, const json::value& body) {
  std::vector<std::vector<std::string>> rows = {
      {"NAME", "PHASE", "READ%", "EPOCH", "TARGET-HEALTH"}};
  const auto* routes = member(body, "routes");
  if (routes && routes->is_array()) {
    for (const auto& r : routes->get_array()) {
      rows.push_back({text_of(member(r, "name")), text_of(member(r, "phase")),
                      format_percent(member(r, "read_percent")), text_of(member(r, "epoch")),
                      health_text(member(r, "target"))});
    }
  }
  print_table(out, rows);
}

void print_route(std::ostream& out, const json::value& r) {
  const auto* user = member(r, "client_user");
  std::vector<std::vector<std::string>> rows = {
      {"name:", text_of(member(r, "name"))},
      {"client:", "database " + text_of(member(r, "client_database")) +
                      (user && user->is_string() ? ", user " + text_of(user) : ", any user")},
      {"phase:", text_of(member(r, "phase")) + " (writes go to the " +
                     text_of(member(r, "authoritative")) + ")"},
      {"read percent:", format_percent(member(r, "read_percent")) + " %"},
      {"epoch:",
       text_of(member(r, "epoch")) + " (updated " + text_of(member(r, "updated_at")) + ")"},
      {"source:", address_text(member(r, "source"))},
      {"", health_detail(member(r, "source"))},
      {"target:", address_text(member(r, "target"))},
      {"", health_detail(member(r, "target"))},
  };
  print_table(out, rows);
}

void print_health(std::ostream& out, const json::value& readyz, const json::value& routes) {
  const std::string status = text_of(member(readyz, "status"));
  out << (status == "ready" ? "ready" : "NOT READY") << "\n";
  const auto* reasons = member(readyz, "reasons");
  if (reasons && reasons->is_array()) {
    for (const auto& r : reasons->get_array()) out << "  - " << text_of(&r) << "\n";
  }
  const auto* list = member(routes, "routes");
  if (!list || !list->is_array()) return;
  out << "\n";
  std::vector<std::vector<std::string>> rows = {{"ROUTE", "SIDE", "ADDRESS", "HEALTH"}};
  for (const auto& r : list->get_array()) {
    for (const char* side : {"source", "target"}) {
      const auto* s = member(r, side);
      if (!s || s->is_null()) continue;
      rows.push_back({text_of(member(r, "name")), side, address_text(s), health_detail(s)});
    }
  }
  print_table(out, rows);
}

void print_pause(std::ostream& out, const json::value& status) {
  const auto* paused = member(status, "paused");
  if (paused && paused->is_bool() && paused->get_bool()) {
    out << "paused: new transactions are held for up to " << text_of(member(status, "remaining_ms"))
        << " ms more (" << text_of(member(status, "waiting")) << " waiting)\n";
  } else {
    out << "not paused\n";
  }
}

void print_pools(std::ostream& out, const json::value& body) {
  std::vector<pool::PoolStats> pools;
  const auto* list = member(body, "pools");
  if (list && list->is_array()) {
    for (const auto& p : list->get_array()) {
      if (p.is_object()) pools.push_back(pool::from_json_object(p.get_object()));
    }
  }
  if (pools.empty()) {
    out << "no server pools yet (a pool is created when a client first needs it)\n";
    return;
  }
  out << pool::format_pools_text(pools);
}

namespace {

void print_control(std::ostream& out, const json::value* control) {
  if (!control) return;
  const auto* mode = member(control, "mode");
  if (text_of(mode) != "postgres") {
    out << "control: " << text_of(mode) << " (this sidecar alone)\n";
    return;
  }
  const auto* connected = member(control, "connected");
  const bool up = connected && connected->is_bool() && connected->get_bool();
  out << "control: " << text_of(member(control, "database")) << ", "
      << (up ? "connected" : "NOT CONNECTED: " + text_of(member(control, "error")))
      << "; this member " << text_of(member(control, "member_id")) << "\n";
}

}  // namespace

void print_status(std::ostream& out, const json::value& body) {
  print_control(out, member(body, "control"));
  std::vector<std::vector<std::string>> rows{
      {"ROUTE", "PHASE", "READ %", "EPOCH", "MEMBERS AT EPOCH"}};
  const auto* routes = member(body, "routes");
  if (routes && routes->is_array()) {
    for (const auto& r : routes->get_array()) {
      rows.push_back(
          {text_of(member(r, "name")), text_of(member(r, "phase")),
           format_percent(member(r, "read_percent")), text_of(member(r, "epoch")),
           text_of(member(r, "members_at_epoch")) + "/" + text_of(member(r, "live_members"))});
    }
  }
  print_table(out, rows);
}

void print_members(std::ostream& out, const json::value& body) {
  print_control(out, member(body, "control"));
  std::vector<std::vector<std::string>> rows{
      {"MEMBER", "LIVE", "HEARTBEAT AGE", "APPLIED EPOCHS", "VERSION", "ADDRESS"}};
  const auto* members = member(body, "members");
  if (members && members->is_array()) {
    for (const auto& m : members->get_array()) {
      std::string applied;
      const auto* a = member(m, "applied");
      if (a && a->is_object()) {
        for (const auto& [route, epoch] : a->get_object()) {
          applied += (applied.empty() ? "" : " ") + std::string(route) + "=" + text_of(&epoch);
        }
      }
      const auto* self = member(m, "self");
      const auto* live = member(m, "live");
      const auto* age = member(m, "heartbeat_age_ms");
      rows.push_back({text_of(member(m, "id")) +
                          (self && self->is_bool() && self->get_bool() ? " (this)" : ""),
                      live && live->is_bool() && live->get_bool() ? "yes" : "no",
                      age && age->is_number() ? text_of(age) + " ms" : "-",
                      applied.empty() ? "-" : applied, text_of(member(m, "version")),
                      text_of(member(m, "address"))});
    }
  }
  print_table(out, rows);
}

}  // namespace pgshift::proxy
