#pragma once
// The read split (DESIGN.md §4): bucket = XXH3_64(key) mod 10000, and a read goes to the
// target iff bucket < read percent in basis points (hundredths of a percent). Properties:
//  - deterministic: no seed, identical in every process, on every architecture, forever
//    (a pinned test vector guards the mapping);
//  - monotonic: raising the percent only adds buckets, so a key never moves back to the
//    source while the percent goes up;
//  - exact: percents are integers (basis points), never floats, so 12.5 % is 1250 buckets.
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pgshift::routing {

inline constexpr std::uint32_t kBuckets = 10000;

// A read percent 0..100 with at most two decimals, held as basis points 0..10000.
class ReadPercent {
 public:
  static constexpr std::uint32_t kMaxBasisPoints = kBuckets;

  constexpr ReadPercent() = default;
  static constexpr std::optional<ReadPercent> from_basis_points(std::uint64_t bp) {
    if (bp > kMaxBasisPoints) return std::nullopt;
    return ReadPercent(static_cast<std::uint32_t>(bp));
  }
  // A JSON number such as 12.5. Rejects NaN, values outside 0..100 and values with more
  // than two decimals (12.345): the caller reports the error rather than rounding silently.
  static std::optional<ReadPercent> from_double(double percent);
  // "12.5", "12.50", "100", "0.01", "7." are accepted; " 1", "1e1", "-0", "12.345",
  // "100.01" and "" are not.
  static std::optional<ReadPercent> parse(std::string_view text);

  constexpr std::uint32_t basis_points() const { return bp_; }
  double as_double() const { return static_cast<double>(bp_) / 100.0; }
  // Shortest decimal form: 1250 -> "12.5", 1200 -> "12", 5 -> "0.05", 10000 -> "100".
  std::string to_string() const;

  constexpr auto operator<=>(const ReadPercent&) const = default;

 private:
  constexpr explicit ReadPercent(std::uint32_t bp) : bp_(bp) {}
  std::uint32_t bp_ = 0;
};

// XXH3_64bits(key, seed 0) % 10000.
std::uint32_t bucket(std::string_view key);

inline bool bucket_goes_to_target(std::uint32_t b, ReadPercent p) {
  return b < p.basis_points();
}
inline bool goes_to_target(std::string_view key, ReadPercent p) {
  return bucket_goes_to_target(bucket(key), p);
}

}  // namespace pgshift::routing
