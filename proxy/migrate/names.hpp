#pragma once
// Names of the database objects pgshift creates for a route's sync (DESIGN.md §5, §6), in one
// place so that sync, verify, cutover and rollback agree, and so that `sync check` can find
// what a crashed run left behind.
//
//   forward  (source -> target): publication pgshift_<r> on the source,
//                                subscription + slot pgshift_<r> on the target
//   reverse  (target -> source): publication pgshift_<r>_rev on the target,
//                                subscription + slot pgshift_<r>_rev on the source
//   both sides: schema pgshift, table pgshift.heartbeat (the lag marker, in the publications)
//   fence:      function pgshift.fence() and trigger pgshift_fence on each table of the route
//
// <r> is the route name lower-cased with every character outside [a-z0-9_] replaced by '_'.
#include <string>
#include <string_view>

namespace pgshift::migrate {

enum class Direction { forward, reverse };

inline std::string object_suffix(std::string_view route) {
  std::string out;
  for (char c : route) {
    char l = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    bool ok = (l >= 'a' && l <= 'z') || (l >= '0' && l <= '9') || l == '_';
    out += ok ? l : '_';
  }
  return out;
}

inline std::string publication_name(std::string_view route, Direction d) {
  return "pgshift_" + object_suffix(route) + (d == Direction::reverse ? "_rev" : "");
}
// Subscriptions and their replication slots share the publication's name.
inline std::string subscription_name(std::string_view route, Direction d) {
  return publication_name(route, d);
}

inline constexpr std::string_view kSchema = "pgshift";
inline constexpr std::string_view kHeartbeatTable = "pgshift.heartbeat";
// CREATE TABLE IF NOT EXISTS statement for the lag marker (same on both sides). One row per
// (route, origin): origin is the side that wrote it ('source' forward, 'target' reverse).
inline constexpr std::string_view kHeartbeatDdl =
    "CREATE SCHEMA IF NOT EXISTS pgshift;"
    "CREATE TABLE IF NOT EXISTS pgshift.heartbeat ("
    " route text NOT NULL, origin text NOT NULL, seq bigint NOT NULL,"
    " origin_time timestamptz NOT NULL, PRIMARY KEY (route, origin))";
inline constexpr std::string_view kFenceFunction = "pgshift.fence";
inline constexpr std::string_view kFenceTrigger = "pgshift_fence";

}  // namespace pgshift::migrate
