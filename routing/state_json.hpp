#pragma once
// JSON for migration states: the local state file (DESIGN.md §7). Serializing and parsing
// only; reading and writing the file (atomically, with fsync) is the proxy's job, and so is
// the admin API's request parsing and its own response formatting.
//
// One route's state:
//   {"phase": "sync", "read_percent": 12.5, "read_percent_bp": 1250, "epoch": 7,
//    "updated_at_ms": 1700000000000, "previous_phase": "source_only"}
// read_percent_bp is the exact value; read_percent is for humans (Boost.JSON writes a
// fractional number as 1.25E1, which every JSON reader accepts). A reader needs one of them;
// if both are present they must agree. updated_at_ms and previous_phase are optional.
// Unknown members are ignored so that an older pgshift can read a newer file's states.
//
// The state file:
//   {"version": 1, "routes": {"auth": {...}, "scores": {...}}}
// A version above kStateFileVersion is refused (unsupported_version), never guessed at.
#include <boost/json.hpp>
#include <map>
#include <string>
#include <string_view>

#include "routing/errc.hpp"
#include "routing/migration_state.hpp"

namespace pgshift::routing {

inline constexpr std::int64_t kStateFileVersion = 1;

struct StateFile {
  std::map<std::string, MigrationState, std::less<>> routes;  // by route name
  bool operator==(const StateFile&) const = default;
};

boost::json::value read_percent_json(ReadPercent p);  // 50 -> 50, 12.5 -> 12.5 (a double)
boost::json::object to_json(const MigrationState& s);
boost::json::object to_json(const StateFile& f);

// `where` prefixes error messages, e.g. "routes.auth".
Result<MigrationState> state_from_json(const boost::json::value& v,
                                       std::string_view where = "state");
Result<StateFile> state_file_from_json(const boost::json::value& v);

std::string serialize_state_file(const StateFile& f);  // one line, then '\n'
Result<StateFile> parse_state_file(std::string_view text);

// A read percent given as a JSON number (12.5) or string ("12.5").
Result<ReadPercent> read_percent_from_json(const boost::json::value& v, std::string_view where);

}  // namespace pgshift::routing
