#pragma once
// "did you mean ...?" hints for unknown configuration keys, from the key table.
#include <string>
#include <string_view>

namespace pgshift::config {

// A hint for the unknown key `name` found in the section pattern `section` (e.g.
// "routes[]"), such as "did you mean 'port'?" or "did you mean 'pool.size'?"; "" if none.
std::string suggest_key(std::string_view section, std::string_view name);

// Optimal string alignment distance (Levenshtein with adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

}  // namespace pgshift::config
