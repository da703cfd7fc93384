#include "config/suggest.hpp"

#include <algorithm>
#include <vector>

#include "config/keys.hpp"

namespace pgshift::config {
namespace {

// Relative paths of keys named `name` below `section` (at most two levels down), e.g.
// "size" under "routes[]" -> "pool.size"; "host" -> "source.host", "target.host".
void nested_matches(std::string_view section, std::string_view name, const std::string& prefix,
                    int depth, std::vector<std::string>& out) {
  if (depth > 2) return;
  for (const auto& key : key_table()) {
    if (key.parent() != section) continue;
    std::string rel =
        prefix.empty() ? std::string(key.name()) : prefix + "." + std::string(key.name());
    if (key.name() == name) out.push_back(rel);
    if (key.type == KeyType::mapping) nested_matches(key.children(), name, rel, depth + 1, out);
  }
}

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string suggest_key(std::string_view section, std::string_view name) {
  std::string ms = std::string(name) + "_ms";
  if (find_key(section, ms)) {
    return "did you mean " + quote(ms) + "? (durations are integer milliseconds)";
  }
  // A sibling a typo or two away.
  const std::size_t limit = name.size() >= 6 ? 2 : 1;
  const KeyInfo* best = nullptr;
  std::size_t best_distance = limit + 1;
  for (const auto& key : key_table()) {
    if (key.parent() != section) continue;
    std::size_t d = edit_distance(name, key.name());
    if (d < best_distance) {
      best = &key;
      best_distance = d;
    }
  }
  if (best) return "did you mean " + quote(best->name()) + "?";
  // The right key in the wrong place: "size" directly under a route.
  std::vector<std::string> nested;
  nested_matches(section, name, "", 0, nested);
  // Prefer the shallowest: "mode" under a route -> pool.mode, sync.mode (not tls.mode).
  auto dots = [](const std::string& s) { return std::count(s.begin(), s.end(), '.'); };
  if (!nested.empty()) {
    auto shallowest = dots(*std::min_element(
        nested.begin(), nested.end(),
        [&](const std::string& a, const std::string& b) { return dots(a) < dots(b); }));
    std::erase_if(nested, [&](const std::string& s) { return dots(s) != shallowest; });
  }
  if (nested.empty() || nested.size() > 3) return "";
  std::string hint = "did you mean ";
  for (std::size_t i = 0; i < nested.size(); ++i) {
    if (i > 0) hint += i + 1 == nested.size() ? " or " : ", ";
    hint += quote(nested[i]);
  }
  return hint + "?";
}

}  // namespace pgshift::config
