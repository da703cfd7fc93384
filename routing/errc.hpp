#pragma once
// Error codes of the routing library (state transitions, state JSON). Errors are values,
// never exceptions; each comes with a human-readable message in the result that carries it.
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace pgshift::routing {

enum class errc {
  ok = 0,
  invalid_read_percent,  // outside 0..100 or more than two decimals
  invalid_transition,    // a phase change the transition table does not allow
  bad_json,              // not JSON, or the wrong shape
  unsupported_version,   // a state file written by a newer pgshift
  unknown_phase,         // a phase name we do not know
};

const std::error_category& routing_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), routing_category()};
}

// A value or an error with a message (C++20 has no std::expected).
template <class T>
struct Result {
  std::optional<T> value;
  std::error_code error;
  std::string message;

  bool ok() const { return value.has_value(); }
  explicit operator bool() const { return ok(); }
  const T& operator*() const { return *value; }
  const T* operator->() const { return &*value; }

  static Result success(T v) { return Result{std::move(v), {}, {}}; }
  static Result failure(errc e, std::string msg) {
    return Result{std::nullopt, make_error_code(e), std::move(msg)};
  }
};

}  // namespace pgshift::routing

template <>
struct std::is_error_code_enum<pgshift::routing::errc> : std::true_type {};
