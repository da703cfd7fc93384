#pragma once
// The two upstreams of a route.
#include <cstdint>
#include <string_view>

namespace pgshift::routing {

enum class Side : std::uint8_t { source, target };

constexpr std::string_view to_string(Side s) {
  return s == Side::source ? "source" : "target";
}
constexpr Side other(Side s) {
  return s == Side::source ? Side::target : Side::source;
}

}  // namespace pgshift::routing
