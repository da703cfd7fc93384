#pragma once
// The first packet on a connection has no type byte: StartupMessage, SSLRequest,
// GSSENCRequest or CancelRequest. https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "wire/errc.hpp"
#include "wire/limits.hpp"

namespace pgshift::wire {

inline constexpr std::uint32_t kProtocol3 = 196608;  // 3.0
inline constexpr std::uint32_t kSslRequestCode = 80877103;
inline constexpr std::uint32_t kGssEncRequestCode = 80877104;
inline constexpr std::uint32_t kCancelRequestCode = 80877102;

enum class StartupKind { need_more, startup, ssl_request, gssenc_request, cancel_request, error };

struct StartupPacket {
  std::uint32_t protocol = 0;
  // Parameters in the order sent: user, database, options, replication, application_name...
  std::vector<std::pair<std::string, std::string>> params;
  const std::string* find(std::string_view key) const;  // nullptr if absent
};

struct CancelKey {
  std::int32_t pid = 0;
  std::int32_t secret = 0;
  bool operator==(const CancelKey&) const = default;
};

struct StartupResult {
  StartupKind kind = StartupKind::need_more;
  std::size_t consumed = 0;
  StartupPacket startup;  // kind == startup
  CancelKey cancel;       // kind == cancel_request
  std::error_code error;  // kind == error
};

// Decodes one startup-phase packet from the front of `data`. Validates 8 <= length <=
// limits.max_startup_length, protocol major 3 (minor versions above 0 are accepted: the
// caller answers NegotiateProtocolVersion), parameter list terminated, "user" present.
StartupResult decode_startup(std::span<const std::uint8_t> data, const Limits& limits);

}  // namespace pgshift::wire
