#pragma once
// Error codes of the protocol codec. Data-path errors are error_codes, never exceptions.
#include <string>
#include <system_error>

namespace pgshift::wire {

enum class errc {
  ok = 0,
  length_too_small,         // a length field below 4 (or below 8 for a startup packet)
  message_too_large,        // over the configured or per-type limit
  unknown_message_type,     // a type byte that is not valid in this direction
  truncated_message,        // a body shorter than its fields say
  malformed_message,        // fields that do not parse (missing terminator, bad count...)
  unsupported_protocol,     // startup protocol version we do not speak
  auth_failed,              // SCRAM proof / server signature mismatch
  channel_binding_refused,  // SCRAM with channel binding (we never offer PLUS)
  bad_scram_message,        // SCRAM message syntax
};

const std::error_category& wire_category() noexcept;
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), wire_category()};
}

}  // namespace pgshift::wire

template <>
struct std::is_error_code_enum<pgshift::wire::errc> : std::true_type {};
