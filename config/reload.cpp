// Which changes a SIGHUP cannot apply, from the key table's `reloadable` flags.
#include <map>

#include "config/keys.hpp"
#include "config/load.hpp"

namespace pgshift::config {
namespace {

// Non-reloadable keys -> displayed value. Route paths use the route's name instead of its
// index ("routes[auth].pool.mode") so that reordering routes is not a change.
std::map<std::string, std::string> fixed_values(const Config& c) {
  Config copy = c;
  std::map<std::string, std::string> out;
  for_each_key(copy, [&out](const KeyInfo& key, const std::string& path, FieldPtr field,
                            const Scope& scope) {
    if (key.reloadable) return;
    std::string p = path;
    if (scope.route && p.rfind("routes[", 0) == 0) {
      p = "routes[" + scope.route->name + "]" + p.substr(p.find(']') + 1);
    }
    out.emplace(std::move(p), display(field, key));
  });
  return out;
}

}  // namespace

std::vector<std::string> restart_required_changes(const Config& current, const Config& next) {
  auto before = fixed_values(current);
  auto after = fixed_values(next);
  std::vector<std::string> changed;
  for (const auto& [path, value] : after) {
    auto it = before.find(path);
    if (it != before.end() && it->second != value) changed.push_back(path);
  }
  return changed;
}

}  // namespace pgshift::config
