#pragma once
// Password authentication math: MD5 and SCRAM-SHA-256 (RFC 5802, RFC 7677), both sides.
// Pure computation (OpenSSL's libcrypto for hashes); the caller moves the bytes.
// Channel binding (SCRAM-SHA-256-PLUS, gs2 flag "p=") is refused; "y" and "n" are accepted.
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "wire/errc.hpp"

namespace pgshift::wire {

// "md5" + hex(md5(hex(md5(password + user)) + salt)), as sent in a PasswordMessage.
std::string md5_password_response(std::string_view user, std::string_view password,
                                  std::span<const std::uint8_t, 4> salt);
// "md5" + hex(md5(password + user)): what pg_authid / a users file stores for md5.
std::string md5_stored_hash(std::string_view user, std::string_view password);
// Response from a stored hash ("md5..." as above) instead of the plaintext.
std::string md5_response_from_stored(std::string_view stored_hash,
                                     std::span<const std::uint8_t, 4> salt);

// SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>, as in pg_authid.
struct ScramSecret {
  int iterations = 4096;
  std::string salt;  // raw bytes
  std::array<std::uint8_t, 32> stored_key{};
  std::array<std::uint8_t, 32> server_key{};
  // Present when built from a plaintext password (lets a client also prove with it).
  std::optional<std::array<std::uint8_t, 32>> client_key;
};
// nullopt unless well formed: iterations > 0, non-empty salt, 32-byte keys, strict base64.
std::optional<ScramSecret> parse_scram_secret(std::string_view text);
std::string format_scram_secret(const ScramSecret& s);
// The password is used as raw bytes: SASLprep (RFC 4013) is not applied. PostgreSQL itself
// falls back to the raw bytes when a password is not valid SASLprep input, so this differs
// only for passwords with non-ASCII characters that SASLprep would normalize.
// iterations below 1 are treated as 1.
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations);

// The salt a user without a usable SCRAM secret is shown (PostgreSQL's scram_mock_salt):
// 16 bytes of HMAC-SHA256(process_secret, user). The same user always gets the same salt
// from one process, different users get unrelated ones, and without the secret nobody can
// tell it from a stored secret's salt, so the salt does not reveal which users exist.
inline constexpr int kScramMockIterations = 4096;  // PostgreSQL's default iteration count
std::string scram_mock_salt(std::string_view user, std::span<const std::uint8_t> process_secret);

// Server side (pgshift authenticating a client).
class ScramServer {
 public:
  // nonce: printable random bytes (tests inject a fixed one; production uses random_nonce()).
  ScramServer(ScramSecret secret, std::string server_nonce);
  // client-first-message -> server-first-message
  std::error_code handle_client_first(std::string_view client_first, std::string& server_first);
  // client-final-message -> server-final-message ("v=..."); auth_failed on a wrong proof.
  std::error_code handle_client_final(std::string_view client_final, std::string& server_final);
  // After a successful exchange: the ClientKey recovered from the proof (enables passthrough
  // of SCRAM to an upstream with the same secret, as PgBouncer does).
  const std::optional<std::array<std::uint8_t, 32>>& client_key() const { return client_key_; }

 private:
  // Messages must come in order, once each; any error is final.
  enum class State { initial, first_sent, done, failed };
  std::error_code fail(errc e);

  ScramSecret secret_;
  std::string server_nonce_, client_first_bare_, server_first_, combined_nonce_;
  std::string gs2_header_;  // "n,," or "y,,": what the c= attribute must carry back
  State state_ = State::initial;
  std::optional<std::array<std::uint8_t, 32>> client_key_;
};

// Client side (pgshift authenticating to an upstream).
class ScramClient {
 public:
  // Either a plaintext password, or a ClientKey + ServerKey pair (passthrough).
  ScramClient(std::string password, std::string client_nonce);
  ScramClient(std::array<std::uint8_t, 32> client_key, std::array<std::uint8_t, 32> server_key,
              std::string client_nonce);
  // PostgreSQL ignores the SCRAM username (the startup packet's user counts), so it is empty
  // by default, as libpq sends it. Set one (before client_first) to reproduce RFC vectors.
  void set_username(std::string_view user);
  std::string client_first();  // "n,,n=,r=<nonce>"
  std::error_code handle_server_first(std::string_view server_first, std::string& client_final);
  // Verifies the server signature: auth_failed if it does not match.
  std::error_code handle_server_final(std::string_view server_final);

 private:
  std::string password_, client_nonce_, client_first_bare_, auth_message_;
  std::string username_;  // already escaped as a saslname
  std::optional<std::array<std::uint8_t, 32>> client_key_, server_key_;
  std::array<std::uint8_t, 32> expected_server_signature_{};
};

// 18 random bytes, base64: the nonce format PostgreSQL uses.
std::string random_nonce();
// RAND_bytes; throws std::runtime_error if the CSPRNG fails (never continue with weak nonces).
void random_bytes(std::span<std::uint8_t> out);

}  // namespace pgshift::wire
