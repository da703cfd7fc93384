// MD5 password math, SCRAM secrets (pg_authid format) and random nonces.
// https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3
// https://www.postgresql.org/docs/15/catalog-pg-authid.html
#include "wire/auth.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "wire/base64.hpp"
#include "wire/crypto.hpp"

namespace pgshift::wire {

using detail::as_chars;

// ---- MD5 ----

namespace {

constexpr std::string_view kMd5Prefix = "md5";

std::string md5_salted(std::string_view inner_hex, std::span<const std::uint8_t, 4> salt) {
  std::string buf(inner_hex);
  buf += as_chars(salt);
  return std::string(kMd5Prefix) + detail::md5_hex(buf);
}

}  // namespace

std::string md5_stored_hash(std::string_view user, std::string_view password) {
  std::string buf(password);
  buf += user;
  return std::string(kMd5Prefix) + detail::md5_hex(buf);
}

std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::span<const std::uint8_t, 4> salt) {
  return md5_salted(std::string_view(md5_stored_hash(user, password)).substr(kMd5Prefix.size()),
                    salt);
}

// Returns "" when stored_hash is not "md5" + 32 hex digits, so a bad users file can only make
// authentication fail. Upper-case hex (hand-written files) is accepted and normalized.
std::string md5_response_from_stored(std::string_view stored_hash,
                                     std::span<const std::uint8_t, 4> salt) {
  if (stored_hash.size() != kMd5Prefix.size() + 32 || !stored_hash.starts_with(kMd5Prefix)) {
    return {};
  }
  std::string hex(stored_hash.substr(kMd5Prefix.size()));
  for (char& c : hex) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return {};
  }
  return md5_salted(hex, salt);
}

// ---- SCRAM secrets ----

namespace {

constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";

std::optional<int> parse_positive_int(std::string_view s) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

std::optional<std::array<std::uint8_t, 32>> decode_key(std::string_view b64) {
  const auto raw = detail::base64_decode(b64);
  if (!raw || raw->size() != 32) return std::nullopt;
  std::array<std::uint8_t, 32> key{};
  std::copy(raw->begin(), raw->end(), key.begin());
  return key;
}

}  // namespace

std::optional<ScramSecret> parse_scram_secret(std::string_view text) {
  if (!text.starts_with(kScramPrefix)) return std::nullopt;
  text.remove_prefix(kScramPrefix.size());
  // <iter>:<salt>$<StoredKey>:<ServerKey>
  const auto dollar = text.find('$');
  if (dollar == std::string_view::npos) return std::nullopt;
  const std::string_view params = text.substr(0, dollar);
  const std::string_view keys = text.substr(dollar + 1);
  const auto colon1 = params.find(':');
  const auto colon2 = keys.find(':');
  if (colon1 == std::string_view::npos || colon2 == std::string_view::npos) return std::nullopt;

  const auto iterations = parse_positive_int(params.substr(0, colon1));
  const auto salt = detail::base64_decode(params.substr(colon1 + 1));
  const auto stored_key = decode_key(keys.substr(0, colon2));
  const auto server_key = decode_key(keys.substr(colon2 + 1));
  if (!iterations || !salt || salt->empty() || !stored_key || !server_key) return std::nullopt;

  ScramSecret s;
  s.iterations = *iterations;
  s.salt = *salt;
  s.stored_key = *stored_key;
  s.server_key = *server_key;
  return s;
}

std::string format_scram_secret(const ScramSecret& s) {
  std::string out(kScramPrefix);
  out += std::to_string(s.iterations);
  out += ':';
  out += detail::base64_encode(s.salt);
  out += '$';
  out += detail::base64_encode(s.stored_key);
  out += ':';
  out += detail::base64_encode(s.server_key);
  return out;
}

// RFC 5802 §3: SaltedPassword, ClientKey, StoredKey = H(ClientKey), ServerKey.
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations) {
  ScramSecret s;
  s.iterations = iterations < 1 ? 1 : iterations;
  s.salt = std::string(salt);
  const auto salted = detail::pbkdf2_sha256(password, salt, s.iterations);
  const auto client_key = detail::hmac_sha256(salted, "Client Key");
  s.stored_key = detail::sha256(client_key);
  s.server_key = detail::hmac_sha256(salted, "Server Key");
  s.client_key = client_key;
  return s;
}

std::string scram_mock_salt(std::string_view user, std::span<const std::uint8_t> process_secret) {
  const auto mac = detail::hmac_sha256(process_secret, user);
  return std::string(reinterpret_cast<const char*>(mac.data()), 16);
}

// ---- randomness ----

void random_bytes(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed: no secure random source");
  }
}

std::string random_nonce() {
  // PostgreSQL: SCRAM_RAW_NONCE_LEN (18) random bytes, base64-encoded (24 printable chars).
  std::array<std::uint8_t, 18> raw{};
  random_bytes(raw);
  return detail::base64_encode(raw);
}

}  // namespace pgshift::wire
