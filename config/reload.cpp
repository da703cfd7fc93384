// Which changes a SIGHUP cannot apply, from the key table's `reloadable` flags.
#include <map>
#include <type_traits>
#include <variant>

#include "config/keys.hpp"
#include "config/load.hpp"

namespace pgshift::config {
namespace {

// A non-reloadable key's path with routes named instead of numbered.
std::string stable_path(const std::string& path, const Scope& scope) {
  if (scope.route && path.rfind("routes[", 0) == 0) {
    return "routes[" + scope.route->name + "]" + path.substr(path.find(']') + 1);
  }
  return path;
}

// Non-reloadable keys -> displayed value. Route paths use the route's name instead of its
// index ("routes[auth].pool.mode") so that reordering routes is not a change.
std::map<std::string, std::string> fixed_values(const Config& c) {
  Config copy = c;
  std::map<std::string, std::string> out;
  for_each_key(copy, [&out](const KeyInfo& key, const std::string& path, FieldPtr field,
                            const Scope& scope) {
    if (key.reloadable) return;
    out.emplace(stable_path(path, scope), display(field, key));
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

std::vector<KeptValue> keep_restart_only_values(const Config& running, Config& next) {
  Config current = running;  // for_each_key needs a mutable Config; fields point into it
  std::map<std::string, FieldPtr> fields;
  for_each_key(current, [&fields](const KeyInfo& key, const std::string& path, FieldPtr field,
                                  const Scope& scope) {
    if (!key.reloadable) fields.emplace(stable_path(path, scope), field);
  });
  std::vector<KeptValue> kept;
  for_each_key(
      next, [&](const KeyInfo& key, const std::string& path, FieldPtr field, const Scope& scope) {
        if (key.reloadable) return;
        auto it = fields.find(stable_path(path, scope));
        if (it == fields.end()) return;
        const std::string before = display(it->second, key), after = display(field, key);
        if (before == after) return;
        // Both point to fields of the same key, so they hold the same alternative.
        std::visit(
            [&](auto& dst) {
              using P = std::decay_t<decltype(dst)>;
              if constexpr (std::is_pointer_v<P>) {
                if (auto* src = std::get_if<P>(&it->second)) *dst = **src;
              }
            },
            field);
        kept.push_back({it->first, before, after});
      });
  return kept;
}

}  // namespace pgshift::config
