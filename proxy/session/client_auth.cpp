#include "proxy/session/client_auth.hpp"

#include <openssl/crypto.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <string_view>

#include "proxy/session/client_auth_throttle.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/auth.hpp"
#include "wire/message_types.hpp"
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
  if (r.wrong_password) {  // authenticate() answers it once the throttle counted the guess
    r.refusal_sqlstate = std::string(sqlstate);
    r.refusal_message = message;
    co_return r;
  }
  co_await send_error(stream, sqlstate, message);
  co_return r;
}

// Reads the client's next 'p' message body.
asio::awaitable<bool> read_password_message(pool::Stream& stream, IoBuffer& buf,
                                            const wire::Limits& limits, OwnedMessage& msg) {
  wire::MessageScanner scanner(wire::Direction::frontend, limits,
                               wire::MessageScanner::TypeSet{}.set());
  auto ec = co_await read_message(stream, buf, scanner, msg);
  co_return !ec && msg.type == wire::fe::password;
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
  r.wrong_password = true;  // from here on, every refusal answers a password guess
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
    r.wrong_password = true;
    co_return co_await fail(stream, r, "28P01", password_failed(user));
  }
  out.clear();
  wire::auth_sasl_final(out, server_final);
  if (co_await stream.write_all(out)) co_return r;
  r.scram_client_key = server.client_key();
  r.ok = true;
  co_return r;
}

asio::awaitable<ClientAuthResult> exchange(pool::Stream& stream, IoBuffer& buf,
                                           const wire::Limits& limits,
                                           config::ClientAuthMethod method,
                                           const config::UserEntry* entry,
                                           const std::string& user) {
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

// "host "10.1.2.3", user "app", database "db", SSL encryption", as PostgreSQL 15 writes it.
std::string hba_subject(const ClientAuthRequest& req) {
  std::string s = "host \"" + req.address + "\", user \"" + req.user + "\"";
  if (!req.physical_replication) s += ", database \"" + req.database + "\"";
  return s + (req.ssl ? ", SSL encryption" : ", no encryption");
}

// The method client_auth.hba_file gives this request, as PostgreSQL's check_hba() and
// ClientAuthentication(): nullopt when refused (the client has been told, `r` says why).
asio::awaitable<std::optional<config::ClientAuthMethod>> hba_method(pool::Stream& stream,
                                                                    const config::HbaFile& hba,
                                                                    const ClientAuthRequest& req,
                                                                    const config::UserEntry* entry,
                                                                    ClientAuthResult& r) {
  config::HbaRequest hr{.user = req.user,
                        .database = req.database,
                        .address = {},
                        .ssl = req.ssl,
                        .physical_replication = req.physical_replication};
  auto address = config::IpAddress::parse(req.address);
  const config::HbaRule* rule = address ? (hr.address = *address, hba.match(hr)) : nullptr;
  if (!rule || rule->method == config::HbaMethod::reject) {
    // PostgreSQL 15's two messages (auth.c, ClientAuthentication), replication variants too.
    const bool repl = req.physical_replication;
    std::string message;
    if (!rule) {
      message = std::string("no pg_hba.conf entry for ") +
                (repl ? "replication connection from " : "") + hba_subject(req);
      r.failure = "no matching rule in " + hba.source;
    } else {
      message = std::string("pg_hba.conf rejects ") +
                (repl ? "replication connection" : "connection") + " for " + hba_subject(req);
      r.failure = "rejected by " + hba.source + ":" + std::to_string(rule->line);
    }
    r.kind = LoginFailure::hba_rejected;
    co_await send_error(stream, "28000", message);
    co_return std::nullopt;
  }
  switch (rule->method) {
    case config::HbaMethod::trust:
      co_return config::ClientAuthMethod::trust;
    case config::HbaMethod::md5:
      // As PostgreSQL: md5 uses SCRAM when the user's secret is a SCRAM secret.
      if (entry && entry->password.starts_with("SCRAM-SHA-256$")) {
        co_return config::ClientAuthMethod::scram_sha_256;
      }
      co_return config::ClientAuthMethod::md5;
    case config::HbaMethod::scram_sha_256:
    case config::HbaMethod::reject:
      break;
  }
  co_return config::ClientAuthMethod::scram_sha_256;
}

// client_auth.throttle before a password exchange. Returns false when the login is refused
// (the client has been told); otherwise the attempt holds a reservation for end().
asio::awaitable<bool> throttle_begin(pool::Stream& stream, const config::AuthThrottle& settings,
                                     const ClientAuthRequest& req, const std::string& key,
                                     ClientAuthResult& r) {
  auto d = client_auth_throttle().begin(settings, key, req.user, AuthThrottle::Clock::now());
  const std::string_view bucket = d.by_user ? "user" : "address";
  const bool refused = d.action == AuthThrottle::Action::refuse;
  if (d.action != AuthThrottle::Action::go) {
    metrics().client_auth_throttled(refused ? "refused" : "delayed", bucket).Increment();
  }
  const auto delay_ms = std::chrono::ceil<std::chrono::milliseconds>(d.delay).count();
  if (d.burst_started) {
    // Once per burst (until the bucket has refilled), not once per attempt.
    log_warn("client authentication throttled: repeated failed logins",
             {f("peer", req.address), f("key", d.by_user ? req.user : key), f("bucket", bucket),
              f("failures", d.failures), f("delay_ms", delay_ms),
              f("action", refused ? "refused" : "delayed")});
  }
  if (refused) {
    r.kind = LoginFailure::throttled;
    r.failure = "throttled: too many failed logins " + (d.by_user ? "for the user" : "from " + key);
    std::string message =
        d.by_user ? "too many failed authentication attempts for user \"" + req.user + "\""
                  : "too many failed authentication attempts from host \"" + req.address + "\"";
    std::string detail =
        "Try again in " + std::to_string((delay_ms + 999) / 1000) + " s (client_auth.throttle).";
    co_await send_error(stream, "53300", message, "FATAL", detail);
    co_return false;
  }
  if (d.action == AuthThrottle::Action::wait) {
    // A timer in this login coroutine: the I/O thread serves other sessions meanwhile, and
    // the login deadline still cancels the wait.
    asio::steady_timer timer(stream.get_executor(), d.delay);
    co_await timer.async_wait(asio::use_awaitable);
  }
  co_return true;
}

}  // namespace

asio::awaitable<ClientAuthResult> authenticate_client(pool::Stream& stream, IoBuffer& buf,
                                                      const wire::Limits& limits,
                                                      const Snapshot& snap,
                                                      const ClientAuthRequest& req) {
  const config::UserEntry* entry = snap.users ? snap.users->find(req.user) : nullptr;
  const auto& ca = snap.config->client_auth;
  config::ClientAuthMethod method = ca.method;
  if (snap.hba) {
    ClientAuthResult refused;
    auto m = co_await hba_method(stream, *snap.hba, req, entry, refused);
    if (!m) co_return refused;
    method = *m;
  }
  if (method == config::ClientAuthMethod::trust || !ca.throttle.enabled) {
    ClientAuthResult plain = co_await exchange(stream, buf, limits, method, entry, req.user);
    if (!plain.refusal_message.empty()) {
      co_await send_error(stream, plain.refusal_sqlstate, plain.refusal_message);
    }
    co_return plain;
  }
  const std::string key = throttle_address_key(req.address);
  ClientAuthResult r;
  if (!co_await throttle_begin(stream, ca.throttle, req, key, r)) co_return r;
  r = co_await exchange(stream, buf, limits, method, entry, req.user);
  // Only a checked, wrong password uses up the budget; a client that left before answering
  // guessed nothing.
  auto outcome = r.ok               ? AuthThrottle::Outcome::ok
                 : r.wrong_password ? AuthThrottle::Outcome::wrong_password
                                    : AuthThrottle::Outcome::abandoned;
  client_auth_throttle().end(ca.throttle, key, req.user, outcome, AuthThrottle::Clock::now());
  if (!r.refusal_message.empty())
    co_await send_error(stream, r.refusal_sqlstate, r.refusal_message);
  co_return r;
}

}  // namespace pgshift::proxy
