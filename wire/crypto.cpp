#include "wire/crypto.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace pgshift::wire::detail {

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string_view as_chars(std::span<const std::uint8_t> b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

std::string md5_hex(std::string_view data) {
  std::array<std::uint8_t, 16> digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_md5(), nullptr) != 1) {
    digest.fill(0);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(32);
  for (std::uint8_t b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Key32 sha256(std::span<const std::uint8_t> data) {
  Key32 out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1) {
    out.fill(0);
  }
  return out;
}

Key32 hmac_sha256(std::span<const std::uint8_t> key, std::string_view data) {
  Key32 out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(),
           &len) == nullptr) {
    out.fill(0);
  }
  return out;
}

// SaltedPassword := Hi(password, salt, i), RFC 5802 §3; Hi is PBKDF2 with HMAC-SHA-256.
Key32 pbkdf2_sha256(std::string_view password, std::string_view salt, int iterations) {
  Key32 out{};
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()),
                        static_cast<int>(salt.size()), iterations, EVP_sha256(),
                        static_cast<int>(out.size()), out.data()) != 1) {
    out.fill(0);
  }
  return out;
}

}  // namespace pgshift::wire::detail
