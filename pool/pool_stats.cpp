#include "pool/pool_stats.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

namespace pgshift::pool {
namespace {

// Every number of a PoolStats with its name, in display order; one list so that the log
// line, the table and the JSON (both directions) never disagree. `fn(name, field)` gets a
// (const) std::int64_t& or std::chrono::microseconds&.
template <class Stats, class Fn>
void visit_numbers(Stats& s, Fn&& fn) {
  fn("size", s.size);
  fn("reserve", s.reserve);
  fn("total", s.total);
  fn("idle", s.idle);
  fn("active", s.active);
  fn("waiting", s.waiting);
  fn("connecting", s.connecting);
  fn("closing", s.closing);
  fn("acquires", s.acquires);
  fn("waits", s.waits);
  fn("connects", s.connects);
  fn("handovers", s.handovers);
  fn("connect_failures", s.connect_failures);
  fn("wait_timeouts", s.wait_timeouts);
  fn("closed", s.closed);
  fn("dead", s.dead);
  fn("health_checks", s.health_checks);
  fn("health_check_failures", s.health_check_failures);
  fn("resets", s.resets);
  fn("reset_failures", s.reset_failures);
  fn("total_wait_time_us", s.total_wait_time);
}

std::int64_t count_of(std::int64_t v) {
  return v;
}
std::int64_t count_of(std::chrono::microseconds v) {
  return v.count();
}
void assign(std::int64_t& field, std::int64_t v) {
  field = v;
}
void assign(std::chrono::microseconds& field, std::int64_t v) {
  field = std::chrono::microseconds(v);
}

std::vector<std::pair<std::string_view, std::int64_t>> numbers(const PoolStats& s) {
  std::vector<std::pair<std::string_view, std::int64_t>> out;
  visit_numbers(s, [&](std::string_view name, const auto& field) {
    out.emplace_back(name, count_of(field));
  });
  return out;
}

// The identity and configuration strings, in display order.
template <class Stats, class Fn>
void visit_names(Stats& s, Fn&& fn) {
  fn("route", s.route);
  fn("side", s.side);
  fn("database", s.database);
  fn("user", s.user);
  fn("mode", s.mode);
}

std::string pool_name(const PoolStats& s) {
  return s.route + "/" + s.side + "/" + s.database + "/" + s.user;
}

}  // namespace

PoolStats& PoolStats::operator+=(const PoolStats& o) {
  idle += o.idle;
  active += o.active;
  waiting += o.waiting;
  connecting += o.connecting;
  closing += o.closing;
  acquires += o.acquires;
  waits += o.waits;
  connects += o.connects;
  handovers += o.handovers;
  connect_failures += o.connect_failures;
  wait_timeouts += o.wait_timeouts;
  closed += o.closed;
  dead += o.dead;
  health_checks += o.health_checks;
  health_check_failures += o.health_check_failures;
  resets += o.resets;
  reset_failures += o.reset_failures;
  total_wait_time += o.total_wait_time;
  return *this;
}

std::string to_log_line(const PoolStats& s) {
  std::string out = "pool=" + pool_name(s) + " mode=" + s.mode;
  for (const auto& [name, value] : numbers(s)) {
    out += ' ';
    out += name;
    out += '=';
    out += std::to_string(value);
  }
  return out;
}

std::string format_pools_text(std::span<const PoolStats> pools) {
  // Columns: the pool name, the mode, then the numbers; each as wide as its widest cell.
  std::vector<std::string> header{"pool", "mode"};
  if (!pools.empty()) {
    for (const auto& [name, value] : numbers(pools.front())) header.emplace_back(name);
  } else {
    for (const auto& [name, value] : numbers(PoolStats{})) header.emplace_back(name);
  }
  std::vector<std::vector<std::string>> rows{header};
  for (const auto& s : pools) {
    std::vector<std::string> row{pool_name(s), s.mode};
    for (const auto& [name, value] : numbers(s)) row.push_back(std::to_string(value));
    rows.push_back(std::move(row));
  }
  std::vector<std::size_t> width(header.size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      if (i > 0) out += " | ";
      // Names left-aligned, numbers right-aligned.
      const std::string pad(width[i] - row[i].size(), ' ');
      out += i < 2 ? row[i] + pad : pad + row[i];
    }
    out += '\n';
  }
  return out;
}

boost::json::object to_json_object(const PoolStats& s) {
  boost::json::object o;
  visit_names(s, [&](std::string_view name, const std::string& value) { o[name] = value; });
  visit_numbers(s, [&](std::string_view name, const auto& field) { o[name] = count_of(field); });
  return o;
}

PoolStats from_json_object(const boost::json::object& o) {
  PoolStats s;
  visit_names(s, [&](std::string_view name, std::string& field) {
    if (const auto* v = o.if_contains(name); v && v->is_string()) field = v->get_string();
  });
  visit_numbers(s, [&](std::string_view name, auto& field) {
    if (const auto* v = o.if_contains(name); v && v->is_int64()) assign(field, v->get_int64());
  });
  return s;
}

boost::json::array to_json_array(std::span<const PoolStats> pools) {
  boost::json::array a;
  a.reserve(pools.size());
  for (const auto& s : pools) a.emplace_back(to_json_object(s));
  return a;
}

std::string to_json(const PoolStats& s) {
  return boost::json::serialize(to_json_object(s));
}

std::string to_json(std::span<const PoolStats> pools) {
  return boost::json::serialize(to_json_array(pools));
}

}  // namespace pgshift::pool
