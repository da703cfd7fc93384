#pragma once
// Internal to wire/: the few libcrypto primitives the password math needs. If OpenSSL fails
// (e.g. MD5 disabled by a FIPS provider) the result is all zeros, which can only make an
// authentication fail, never succeed.
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace pgshift::wire::detail {

using Key32 = std::array<std::uint8_t, 32>;

std::span<const std::uint8_t> as_bytes(std::string_view s);
std::string_view as_chars(std::span<const std::uint8_t> b);

std::string md5_hex(std::string_view data);  // 32 lowercase hex digits
Key32 sha256(std::span<const std::uint8_t> data);
Key32 hmac_sha256(std::span<const std::uint8_t> key, std::string_view data);
Key32 pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations);

}  // namespace pgshift::wire::detail
