#include "routing/split.hpp"

#include <xxhash.h>

#include <cmath>

namespace pgshift::routing {

std::uint32_t bucket(std::string_view key) {
  return static_cast<std::uint32_t>(XXH3_64bits(key.data(), key.size()) % kBuckets);
}

std::optional<ReadPercent> ReadPercent::from_double(double percent) {
  if (!std::isfinite(percent) || percent < 0.0 || percent > 100.0) return std::nullopt;
  const double scaled = percent * 100.0;
  const double rounded = std::round(scaled);
  // 12.5 * 100 is exact; 0.07 * 100 is 7.000000000000001: allow float noise, not decimals.
  if (std::fabs(scaled - rounded) > 1e-6) return std::nullopt;
  return from_basis_points(static_cast<std::uint64_t>(rounded));
}

std::optional<ReadPercent> ReadPercent::parse(std::string_view text) {
  std::uint64_t whole = 0;
  std::size_t i = 0;
  std::size_t int_digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
    if (whole > 100) return std::nullopt;
    ++i;
    ++int_digits;
  }
  std::uint64_t frac = 0;
  std::size_t frac_digits = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (frac_digits == 2) {
        if (text[i] != '0') return std::nullopt;  // 12.500 is fine, 12.345 is not
      } else {
        frac = frac * 10 + static_cast<std::uint64_t>(text[i] - '0');
        ++frac_digits;
      }
      ++i;
    }
  }
  if (i != text.size() || (int_digits == 0 && frac_digits == 0)) return std::nullopt;
  if (frac_digits == 1) frac *= 10;
  return from_basis_points(whole * 100 + frac);
}

std::string ReadPercent::to_string() const {
  std::string out = std::to_string(bp_ / 100);
  const std::uint32_t frac = bp_ % 100;
  if (frac != 0) {
    out.push_back('.');
    out.push_back(static_cast<char>('0' + frac / 10));
    if (frac % 10 != 0) out.push_back(static_cast<char>('0' + frac % 10));
  }
  return out;
}

}  // namespace pgshift::routing
