#include "proxy/session/client_auth.hpp"

#include <openssl/crypto.h>

#include <string_view>

#include "wire/auth.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {
namespace {

constexpr std::string_view kScramMechanism = "SCRAM-SHA-256";

std::string password_failed(const std::string& user) {
  return "password authentication failed for user \"" + user + "\"";
}

bool is_md5_hash(std::string_view s) {
  return s.size() == 35 && s.starts_with("md5");
}

// The per-process secret behind mock salts (PostgreSQL keeps one per cluster in
// pg_control). Made once, on first use; a static local, so thread-safe.
std::span<const std::uint8_t> mock_auth_secret() {
  static const std::array<std::uint8_t, 32> secret = [] {
    std::array<std::uint8_t, 32> s{};
    wire::random_bytes(s);
    return s;
  }();
  return secret;
}

asio::awaitable<ClientAuthResult> fail(pool::Stream& stream, ClientAuthResult r,
                                       std::string_view sqlstate, const std::string& message) {
  co_await send_error(stream, sqlstate, message);
  co_return r;
}

// Reads the client's next 'p' message body.
asio::awaitable<bool> read_password_message(pool::Stream& stream, IoBuffer& buf,
                                            const wire::Limits& limits, OwnedMessage& msg) {
  wire::MessageScanner scanner(wire::Direction::frontend, limits,
                               wire::MessageScanner::TypeSet{}.set());
  auto ec = co_await read_message(stream, buf, scanner, msg);
  co_return !ec && msg.type == 'p';
}

asio::awaitable<ClientAuthResult> authenticate_md5(pool::Stream& stream, IoBuffer& buf,
                                                   const wire::Limits& limits,
                                                   const config::UserEntry* entry,
                                                   const std::string& user) {
  ClientAuthResult r;
  r.entry = entry;
  std::array<std::uint8_t, 4> salt{};
  wire::random_bytes(salt);
  wire::Bytes out;
  wire::auth_md5(out, salt);
  if (co_await stream.write_all(out)) co_return r;
  OwnedMessage msg;
  if (!co_await read_password_message(stream, buf, limits, msg)) {
    r.failure = "client sent no password message";
    co_return co_await fail(stream, r, "08P01", "expected password response");
  }
  std::string_view given;
  if (wire::parse_password(msg.body, given)) {
    r.failure = "malformed password message";
    co_return co_await fail(stream, r, "08P01", "invalid password packet");
  }
  if (!entry || entry->password.starts_with("SCRAM-SHA-256$")) {
    r.failure = entry ? "users file holds a SCRAM secret; md5 impossible" : "unknown user";
    co_return co_await fail(stream, r, "28P01", password_failed(user));
  }
  std::string stored =
      is_md5_hash(entry->password) ? entry->password : wire::md5_stored_hash(user, entry->password);
  std::string expected = wire::md5_response_from_stored(stored, salt);
  if (given.size() != expected.size() ||
      CRYPTO_memcmp(given.data(), expected.data(), expected.size()) != 0) {
    r.failure = "wrong password";
    co_return co_await fail(stream, r, "28P01", password_failed(user));
  }
  r.ok = true;
  co_return r;
}

asio::awaitable<ClientAuthResult> authenticate_scram(pool::Stream& stream, IoBuffer& buf,
                                                     const wire::Limits& limits,
                                                     const config::UserEntry* entry,
                                                     const std::string& user) {
  ClientAuthResult r;
  r.entry = entry;
  // As PostgreSQL's mock authentication: an unknown user, or one whose only secret is an md5
  // hash, goes through a full exchange with a secret nobody knows, salted with the user's
  // mock salt (the same on every attempt), and fails at the proof like a wrong password. A
  // plaintext password gets the same stable salt. So neither the salt, the iteration count
  // nor the error tells which users exist.
  const std::string mock_salt = wire::scram_mock_salt(user, mock_auth_secret());
  std::optional<wire::ScramSecret> secret;
  bool usable = false;
  if (entry) {
    if (entry->password.starts_with("SCRAM-SHA-256$")) {
      secret = wire::parse_scram_secret(entry->password);
      usable = secret.has_value();
    } else if (!is_md5_hash(entry->password)) {
      secret = wire::make_scram_secret(entry->password, mock_salt, wire::kScramMockIterations);
      usable = true;
    }
  }
  if (!secret) {
    secret = wire::make_scram_secret(wire::random_nonce(), mock_salt, wire::kScramMockIterations);
  }
  wire::Bytes out;
  std::string_view mechs[] = {kScramMechanism};
  wire::auth_sasl(out, mechs);
  if (co_await stream.write_all(out)) co_return r;

  OwnedMessage msg;
  if (!co_await read_password_message(stream, buf, limits, msg)) {
    r.failure = "client sent no SASLInitialResponse";
    co_return co_await fail(stream, r, "08P01", "expected SASL response");
  }
  wire::SaslInitialResponse initial;
  if (wire::parse_sasl_initial_response(msg.body, initial) ||
      initial.mechanism != kScramMechanism) {
    r.failure = "unsupported SASL mechanism";
    co_return co_await fail(stream, r, "28000",
                            "client selected an invalid SASL authentication mechanism");
  }
  wire::ScramServer server(*secret, wire::random_nonce());
  std::string server_first;
  std::string_view client_first(reinterpret_cast<const char*>(initial.data.data()),
                                initial.data.size());
  if (auto ec = server.handle_client_first(client_first, server_first)) {
    r.failure = "bad SCRAM client-first-message: " + ec.message();
    bool binding = ec == wire::errc::channel_binding_refused;
    std::string_view sqlstate = binding ? "28000" : "08P01";
    std::string message =
        binding ? "channel binding is not supported by pgshift" : "malformed SCRAM message";
    co_return co_await fail(stream, r, sqlstate, message);
  }
  out.clear();
  wire::auth_sasl_continue(out, server_first);
  if (co_await stream.write_all(out)) co_return r;

  if (!co_await read_password_message(stream, buf, limits, msg)) {
    r.failure = "client sent no SASLResponse";
    co_return co_await fail(stream, r, "08P01", "expected SASL response");
  }
  std::string server_final;
  std::string_view client_final(reinterpret_cast<const char*>(msg.body.data()), msg.body.size());
  auto ec = server.handle_client_final(client_final, server_final);
  if (ec || !usable) {
    r.failure = !usable ? "unknown user or no SCRAM-capable secret" : "wrong password";
    co_return co_await fail(stream, r, "28P01", password_failed(user));
  }
  out.clear();
  wire::auth_sasl_final(out, server_final);
  if (co_await stream.write_all(out)) co_return r;
  r.scram_client_key = server.client_key();
  r.ok = true;
  co_return r;
}

}  // namespace

asio::awaitable<ClientAuthResult> authenticate_client(pool::Stream& stream, IoBuffer& buf,
                                                      const wire::Limits& limits,
                                                      config::ClientAuthMethod method,
                                                      const config::UsersFile* users,
                                                      const std::string& user) {
  const config::UserEntry* entry = users ? users->find(user) : nullptr;
  switch (method) {
    case config::ClientAuthMethod::trust: {
      ClientAuthResult r;
      r.ok = true;
      r.entry = entry;
      co_return r;
    }
    case config::ClientAuthMethod::md5:
      co_return co_await authenticate_md5(stream, buf, limits, entry, user);
    case config::ClientAuthMethod::scram_sha_256:
      co_return co_await authenticate_scram(stream, buf, limits, entry, user);
  }
  co_return ClientAuthResult{};
}

}  // namespace pgshift::proxy
