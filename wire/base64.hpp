#pragma once
// Internal to wire/: standard base64 (RFC 4648 §4, with padding), as SCRAM and pg_authid use.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace pgshift::wire::detail {

std::string base64_encode(std::span<const std::uint8_t> in);
std::string base64_encode(std::string_view in);
// Strict: only the base64 alphabet, length a multiple of 4, '=' only as final padding.
std::optional<std::string> base64_decode(std::string_view in);

}  // namespace pgshift::wire::detail
