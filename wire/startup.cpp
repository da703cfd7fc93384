// Startup-phase packets: Int32 length (counting itself), Int32 code, then the payload.
// https://www.postgresql.org/docs/15/protocol-message-formats.html (StartupMessage,
// SSLRequest, GSSENCRequest, CancelRequest). Checks mirror ProcessStartupPacket in
// src/backend/postmaster/postmaster.c.
#include "wire/startup.hpp"

#include "wire/body_reader.hpp"
#include "wire/byte_order.hpp"

namespace pgshift::wire {
namespace {

constexpr std::uint32_t kMinStartupLength = 8;  // length + code
constexpr std::uint32_t kCancelLength = 16;     // length + code + pid + secret

StartupResult failure(std::error_code ec) {
  StartupResult r;
  r.kind = StartupKind::error;
  r.error = ec;
  return r;
}

// Errors decidable from the 8-byte prefix alone, so a bad packet fails before its body arrives.
errc check_code(std::uint32_t code, std::uint32_t length) {
  switch (code) {
    case kSslRequestCode:
    case kGssEncRequestCode:
      return length == kMinStartupLength ? errc::ok : errc::malformed_message;
    case kCancelRequestCode:
      return length == kCancelLength ? errc::ok : errc::malformed_message;
    default:
      // Any 3.x is accepted; the caller answers NegotiateProtocolVersion for minor > 0.
      // Everything else (protocol 2, unknown request codes) is refused, as the server does.
      return (code >> 16) == 3 ? errc::ok : errc::unsupported_protocol;
  }
}

// key\0value\0 ... \0: the final NUL must be the last byte of the packet.
std::error_code parse_params(std::span<const std::uint8_t> payload, StartupPacket& out) {
  detail::BodyReader in(payload);
  for (;;) {
    if (in.at_end()) return errc::malformed_message;  // list not terminated
    const std::string_view key = in.cstr();
    if (in.error()) return in.error();
    if (key.empty()) break;
    const std::string_view value = in.cstr();
    if (in.error()) return in.error();
    out.params.emplace_back(std::string(key), std::string(value));
  }
  if (std::error_code ec = in.finish()) return ec;
  // PostgreSQL: "no PostgreSQL user name specified in startup packet".
  const std::string* user = out.find("user");
  if (user == nullptr || user->empty()) return errc::malformed_message;
  return {};
}

}  // namespace

const std::string* StartupPacket::find(std::string_view key) const {
  for (const auto& [k, v] : params) {
    if (k == key) return &v;
  }
  return nullptr;
}

StartupResult decode_startup(std::span<const std::uint8_t> data, const Limits& limits) {
  if (data.size() < 4) return {};
  const std::uint32_t length = read_be32(data.data());
  if (length < kMinStartupLength) return failure(errc::length_too_small);
  if (length > limits.max_startup_length) return failure(errc::message_too_large);
  if (data.size() < kMinStartupLength) return {};
  const std::uint32_t code = read_be32(data.data() + 4);
  if (const errc e = check_code(code, length); e != errc::ok) return failure(e);
  if (data.size() < length) return {};

  StartupResult r;
  r.consumed = length;
  const auto payload = data.subspan(kMinStartupLength, length - kMinStartupLength);
  switch (code) {
    case kSslRequestCode:
      r.kind = StartupKind::ssl_request;
      return r;
    case kGssEncRequestCode:
      r.kind = StartupKind::gssenc_request;
      return r;
    case kCancelRequestCode: {
      detail::BodyReader in(payload);
      r.cancel.pid = in.i32();
      r.cancel.secret = in.i32();
      r.kind = StartupKind::cancel_request;
      return r;  // length checked above, so the reads cannot fail
    }
    default:
      break;
  }
  r.startup.protocol = code;
  if (std::error_code ec = parse_params(payload, r.startup)) return failure(ec);
  r.kind = StartupKind::startup;
  return r;
}

}  // namespace pgshift::wire
