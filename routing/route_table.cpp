#include "routing/route_table.hpp"

namespace pgshift::routing {

RouteTable::RouteTable(config::ConfigPtr config) : config_(std::move(config)) {}

const config::Route* RouteTable::find(std::string_view database, std::string_view user) const {
  if (!config_) return nullptr;
  const config::Route* best = nullptr;
  int best_rank = 0;
  for (const config::Route& r : config_->routes) {
    int rank = 0;
    const bool user_ok = !r.client_user || *r.client_user == user;
    if (!user_ok) continue;
    if (r.client_database == database) {
      rank = r.client_user ? 4 : 3;
    } else if (r.client_database == "*") {
      rank = r.client_user ? 2 : 1;
    }
    if (rank > best_rank) {
      best = &r;
      best_rank = rank;
    }
  }
  return best;
}

std::string database_not_found_message(std::string_view database) {
  return "database \"" + std::string(database) + "\" does not exist";
}

std::string upstream_database(const config::Upstream& upstream, std::string_view client_database) {
  return upstream.database.empty() ? std::string(client_database) : upstream.database;
}

}  // namespace pgshift::routing
