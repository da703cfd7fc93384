#include "pool/pool_stats.hpp"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

namespace pgshift::pool {
namespace {

// Every number of a PoolStats with its name, in display order; one list so that the log
// line, the table and the JSON never disagree.
std::vector<std::pair<std::string_view, std::int64_t>> numbers(const PoolStats& s) {
  return {{"size", s.size},
          {"reserve", s.reserve},
          {"total", s.total},
          {"idle", s.idle},
          {"active", s.active},
          {"waiting", s.waiting},
          {"connecting", s.connecting},
          {"closing", s.closing},
          {"acquires", s.acquires},
          {"waits", s.waits},
          {"connects", s.connects},
          {"connect_failures", s.connect_failures},
          {"wait_timeouts", s.wait_timeouts},
          {"closed", s.closed},
          {"dead", s.dead},
          {"health_checks", s.health_checks},
          {"health_check_failures", s.health_check_failures},
          {"resets", s.resets},
          {"reset_failures", s.reset_failures},
          {"total_wait_time_us", s.total_wait_time.count()}};
}

std::string pool_name(const PoolStats& s) {
  return s.route + "/" + s.side + "/" + s.database + "/" + s.user;
}

// Route, database and user names come from the configuration and from clients, so they are
// escaped by Boost.JSON rather than trusted.
void append_json_string(std::string& out, std::string_view value) {
  out += boost::json::serialize(boost::json::string(value));
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

std::string to_json(const PoolStats& s) {
  std::string out = "{";
  const std::pair<std::string_view, const std::string*> names[] = {{"route", &s.route},
                                                                   {"side", &s.side},
                                                                   {"database", &s.database},
                                                                   {"user", &s.user},
                                                                   {"mode", &s.mode}};
  for (const auto& [name, value] : names) {
    append_json_string(out, name);
    out += ':';
    append_json_string(out, *value);
    out += ',';
  }
  for (const auto& [name, value] : numbers(s)) {
    append_json_string(out, name);
    out += ':';
    out += std::to_string(value);
    out += ',';
  }
  out.back() = '}';
  return out;
}

std::string to_json(std::span<const PoolStats> pools) {
  std::string out = "[";
  for (const auto& s : pools) {
    if (out.size() > 1) out += ',';
    out += to_json(s);
  }
  out += ']';
  return out;
}

}  // namespace pgshift::pool
