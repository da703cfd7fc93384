// SCRAM-SHA-256 exchanges (RFC 5802, RFC 7677), both sides, as PostgreSQL speaks them:
// https://www.postgresql.org/docs/15/sasl-authentication.html
// Checks mirror src/backend/libpq/auth-scram.c (server) and src/interfaces/libpq/fe-auth-scram.c
// (client). The username attribute is ignored by the server (the startup packet's user counts);
// authzid and mandatory extensions ("m=") are refused, as PostgreSQL does.
#include <openssl/crypto.h>

#include <charconv>

#include "wire/auth.hpp"
#include "wire/base64.hpp"
#include "wire/crypto.hpp"

namespace pgshift::wire {

using detail::Key32;

namespace {

// Reads "x=value" attributes separated by ',' from a SCRAM message.
class AttrReader {
 public:
  explicit AttrReader(std::string_view msg) : msg_(msg) {}

  bool at_end() const { return pos_ == msg_.size() && !comma_pending_; }
  std::size_t pos() const { return pos_; }

  // The next attribute, whatever its name; false at the end or on a syntax error.
  bool next(char& name, std::string_view& value) {
    if (pos_ == msg_.size() && !comma_pending_) return false;
    const std::string_view rest = msg_.substr(pos_);
    const auto comma = rest.find(',');
    const std::string_view attr = rest.substr(0, comma);
    pos_ += attr.size();
    comma_pending_ = false;
    if (comma != std::string_view::npos) {
      ++pos_;
      comma_pending_ = true;  // a ',' promises another attribute
    }
    const bool alpha =
        !attr.empty() && ((attr[0] >= 'a' && attr[0] <= 'z') || (attr[0] >= 'A' && attr[0] <= 'Z'));
    if (!alpha || attr.size() < 2 || attr[1] != '=') return false;
    name = attr[0];
    value = attr.substr(2);
    return true;
  }

  bool expect(char name, std::string_view& value) {
    char got = 0;
    return next(got, value) && got == name;
  }

  // Skips optional extensions up to the end; false on a syntax error.
  bool skip_extensions() {
    char name = 0;
    std::string_view value;
    while (!at_end()) {
      if (!next(name, value)) return false;
    }
    return true;
  }

 private:
  std::string_view msg_;
  std::size_t pos_ = 0;
  bool comma_pending_ = false;
};

// RFC 5802: printable = %x21-2B / %x2D-7E (printable ASCII except ',').
bool valid_nonce(std::string_view n) {
  if (n.empty()) return false;
  for (char c : n) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

std::optional<int> parse_iterations(std::string_view s) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || v <= 0) return std::nullopt;
  return v;
}

Key32 xor_keys(const Key32& a, const Key32& b) {
  Key32 out{};
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = a[i] ^ b[i];
  return out;
}

std::optional<Key32> decode_key(std::string_view b64) {
  const auto raw = detail::base64_decode(b64);
  if (!raw || raw->size() != 32) return std::nullopt;
  Key32 key{};
  std::copy(raw->begin(), raw->end(), key.begin());
  return key;
}

bool equal_keys(const Key32& a, const Key32& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// ---- server ----

ScramServer::ScramServer(ScramSecret secret, std::string server_nonce)
    : secret_(std::move(secret)), server_nonce_(std::move(server_nonce)) {}

std::error_code ScramServer::fail(errc e) {
  state_ = State::failed;
  return e;
}

// client-first-message = gs2-cbind-flag "," [authzid] "," [reserved-mext ","] username ","
//                        nonce ["," extensions]
std::error_code ScramServer::handle_client_first(std::string_view msg, std::string& server_first) {
  if (state_ != State::initial) return fail(errc::bad_scram_message);
  std::string_view in = msg;
  if (in.starts_with("p=")) return fail(errc::channel_binding_refused);  // we never offer PLUS
  if (!in.starts_with("n,") && !in.starts_with("y,")) return fail(errc::bad_scram_message);
  in.remove_prefix(2);
  if (!in.starts_with(",")) return fail(errc::bad_scram_message);  // authzid: unsupported
  in.remove_prefix(1);
  gs2_header_ = std::string(msg.substr(0, msg.size() - in.size()));
  client_first_bare_ = std::string(in);

  AttrReader attrs(in);
  std::string_view user, nonce;
  if (!attrs.expect('n', user) || !attrs.expect('r', nonce) || !valid_nonce(nonce) ||
      !attrs.skip_extensions()) {
    return fail(errc::bad_scram_message);  // also rejects "m=" before the username
  }
  combined_nonce_ = std::string(nonce) + server_nonce_;
  server_first_ = "r=" + combined_nonce_ + ",s=" + detail::base64_encode(secret_.salt) +
                  ",i=" + std::to_string(secret_.iterations);
  server_first = server_first_;
  state_ = State::first_sent;
  return {};
}

// client-final-message = "c=" base64(gs2-header) "," "r=" nonce ["," extensions] "," "p=" proof
std::error_code ScramServer::handle_client_final(std::string_view msg, std::string& server_final) {
  if (state_ != State::first_sent) return fail(errc::bad_scram_message);
  AttrReader attrs(msg);
  std::string_view binding, nonce, value;
  if (!attrs.expect('c', binding) || !attrs.expect('r', nonce)) {
    return fail(errc::bad_scram_message);
  }
  // Without channel binding, c= must echo the gs2 header of the first message exactly.
  const auto header = detail::base64_decode(binding);
  if (!header || *header != gs2_header_) return fail(errc::bad_scram_message);
  // The whole nonce: the client's own prefix and our suffix (replay protection).
  if (nonce != combined_nonce_) return fail(errc::bad_scram_message);

  // Extensions, then the proof, which must be the last attribute.
  std::size_t proof_start = 0;
  std::optional<Key32> proof;
  for (char name = 0; !attrs.at_end();) {
    proof_start = attrs.pos();
    if (!attrs.next(name, value)) return fail(errc::bad_scram_message);
    if (name == 'p') {
      proof = decode_key(value);
      if (!proof || !attrs.at_end()) return fail(errc::bad_scram_message);
    }
  }
  if (!proof) return fail(errc::bad_scram_message);

  // AuthMessage = client-first-bare "," server-first "," client-final-without-proof
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(msg.substr(0, proof_start - 1));
  const Key32 client_signature = detail::hmac_sha256(secret_.stored_key, auth_message);
  const Key32 client_key = xor_keys(*proof, client_signature);
  if (!equal_keys(detail::sha256(client_key), secret_.stored_key)) {
    return fail(errc::auth_failed);
  }
  client_key_ = client_key;
  server_final =
      "v=" + detail::base64_encode(detail::hmac_sha256(secret_.server_key, auth_message));
  state_ = State::done;
  return {};
}

// ---- client ----

ScramClient::ScramClient(std::string password, std::string client_nonce)
    : password_(std::move(password)), client_nonce_(std::move(client_nonce)) {}

ScramClient::ScramClient(std::array<std::uint8_t, 32> client_key,
                         std::array<std::uint8_t, 32> server_key, std::string client_nonce)
    : client_nonce_(std::move(client_nonce)), client_key_(client_key), server_key_(server_key) {}

// saslname: ',' and '=' are escaped as "=2C" and "=3D" (RFC 5802 §5.1).
void ScramClient::set_username(std::string_view user) {
  username_.clear();
  for (char c : user) {
    if (c == ',') {
      username_ += "=2C";
    } else if (c == '=') {
      username_ += "=3D";
    } else {
      username_ += c;
    }
  }
}

std::string ScramClient::client_first() {
  client_first_bare_ = "n=" + username_ + ",r=" + client_nonce_;
  return "n,," + client_first_bare_;
}

// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
std::error_code ScramClient::handle_server_first(std::string_view msg, std::string& client_final) {
  if (client_first_bare_.empty() || !auth_message_.empty()) return errc::bad_scram_message;
  AttrReader attrs(msg);
  std::string_view nonce, salt_b64, iter_text;
  if (!attrs.expect('r', nonce) || !attrs.expect('s', salt_b64) || !attrs.expect('i', iter_text) ||
      !attrs.skip_extensions()) {
    return errc::bad_scram_message;
  }
  // The server must extend our nonce, not replace it.
  if (!valid_nonce(nonce) || nonce.size() <= client_nonce_.size() ||
      !nonce.starts_with(client_nonce_)) {
    return errc::bad_scram_message;
  }
  const auto salt = detail::base64_decode(salt_b64);
  const auto iterations = parse_iterations(iter_text);
  if (!salt || salt->empty() || !iterations) return errc::bad_scram_message;

  if (!client_key_) {  // password mode; in passthrough mode the keys are given
    const Key32 salted = detail::pbkdf2_sha256(password_, *salt, *iterations);
    client_key_ = detail::hmac_sha256(salted, "Client Key");
    server_key_ = detail::hmac_sha256(salted, "Server Key");
  }
  const std::string without_proof = "c=biws,r=" + std::string(nonce);  // biws = b64("n,,")
  auth_message_ = client_first_bare_ + "," + std::string(msg) + "," + without_proof;
  const Key32 stored_key = detail::sha256(*client_key_);
  const Key32 proof = xor_keys(*client_key_, detail::hmac_sha256(stored_key, auth_message_));
  expected_server_signature_ = detail::hmac_sha256(*server_key_, auth_message_);
  client_final = without_proof + ",p=" + detail::base64_encode(proof);
  return {};
}

// server-final-message = ("e=" server-error-value / "v=" verifier) ["," extensions]
std::error_code ScramClient::handle_server_final(std::string_view msg) {
  if (auth_message_.empty()) return errc::bad_scram_message;
  AttrReader attrs(msg);
  char name = 0;
  std::string_view value;
  if (!attrs.next(name, value)) return errc::bad_scram_message;
  if (name == 'e') return errc::auth_failed;
  const auto signature = name == 'v' ? decode_key(value) : std::nullopt;
  if (!signature || !attrs.skip_extensions()) return errc::bad_scram_message;
  if (!equal_keys(*signature, expected_server_signature_)) return errc::auth_failed;
  return {};
}

}  // namespace pgshift::wire
