#pragma once
// The body of PUT /v1/routes/{name}/read-percent: {"percent": <0..100, at most two decimals>}
// and, for a compare-and-set, "epoch": <the route's epoch the change is based on>. The number
// is read from its text, exactly (99.999999999999999999 and 1e-400 are refused, not rounded),
// and a duplicate member is refused rather than one of the two silently winning.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "routing/split.hpp"

namespace pgshift::proxy {

// The percent, or nullopt with `error` saying what was wrong and what is expected. `epoch`
// is set when the body has one.
std::optional<routing::ReadPercent> parse_percent_body(std::string_view body, std::string& error,
                                                       std::optional<std::uint64_t>& epoch);

// A JSON number's text as basis points, exactly: 0..100 with at most two decimals, whatever
// its spelling ("12.50", "1.25e1", "0e-400"); nullopt otherwise.
std::optional<std::uint32_t> exact_basis_points(std::string_view text);

}  // namespace pgshift::proxy
