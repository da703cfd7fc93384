#pragma once
// Which route serves a client: by the database (and optionally the user) in its startup
// packet (DESIGN.md §4). Precedence, most specific first:
//   1. client_database == database and client_user == user
//   2. client_database == database, no client_user
//   3. client_database == "*" and client_user == user
//   4. client_database == "*", no client_user
// Ties (which validate() should reject) go to the route listed first. Names compare
// exactly, as the server compares database and role names. No match: the proxy answers
// FATAL 3D000 "database "x" does not exist", as the server would.
//
// Immutable; holds the config snapshot it points into. Safe to share between threads.
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace pgshift::routing {

inline constexpr std::string_view kSqlstateInvalidCatalogName = "3D000";

class RouteTable {
 public:
  explicit RouteTable(config::ConfigPtr config);

  // nullptr if no route matches.
  const config::Route* find(std::string_view database, std::string_view user) const;

  const config::ConfigPtr& config() const { return config_; }

 private:
  config::ConfigPtr config_;
};

// The message of the 3D000 error for an unknown database.
std::string database_not_found_message(std::string_view database);

// The database name to ask an upstream for: its configured name, or the client's.
std::string upstream_database(const config::Upstream& upstream, std::string_view client_database);

}  // namespace pgshift::routing
