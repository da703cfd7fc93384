#include "pool/upstream_auth.hpp"

#include <algorithm>
#include <string_view>

#include "pool/errc.hpp"
#include "pool/upstream_detail.hpp"

namespace pgshift::pool {
namespace {

using wire::AuthCode;
using Step = UpstreamAuth::Step;

constexpr std::string_view kScram = "SCRAM-SHA-256";
constexpr std::string_view kScramPlus = "SCRAM-SHA-256-PLUS";

// "md5" + 32 hex digits: the form pg_authid (and a users file) stores for md5.
bool is_md5_hash(std::string_view s) {
  return s.size() == 35 && s.starts_with("md5") && std::all_of(s.begin() + 3, s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string_view as_text(std::span<const std::uint8_t> data) {
  return {reinterpret_cast<const char*>(data.data()), data.size()};
}

Step failed(ConnectError& error, error_code ec, std::string message) {
  detail::fail(error, ec, std::move(message));
  return Step::failed;
}

}  // namespace

UpstreamAuth::UpstreamAuth(const Credentials& credentials, std::string scram_nonce)
    : credentials_(credentials), scram_nonce_(std::move(scram_nonce)) {}

const std::string* UpstreamAuth::plaintext(const char* method, ConnectError& error) const {
  const std::string& password = credentials_.password;
  if (!password.empty() && !is_md5_hash(password)) return &password;
  std::string why = password.empty() ? "no password is configured"
                                     : "only an MD5 hash of the password is configured";
  detail::fail(error, errc::missing_credentials,
               std::string("server requested ") + method + " authentication but " + why);
  return nullptr;
}

Step UpstreamAuth::on_request(const wire::Authentication& request, wire::Bytes& reply,
                              ConnectError& error) {
  switch (request.code) {
    case AuthCode::ok:
      if (scram_state_ != Scram::none && scram_state_ != Scram::verified) {
        // Accepting this would skip the proof that the server knows the password.
        return failed(error, errc::protocol_violation,
                      "server ended SCRAM authentication without its final message");
      }
      return Step::done;
    case AuthCode::cleartext: {
      const std::string* password = plaintext("cleartext password", error);
      if (password == nullptr) return Step::failed;
      wire::password_message(reply, *password);
      return Step::reply;
    }
    case AuthCode::md5: {
      if (request.md5_salt.size() != 4) {
        return failed(error, errc::protocol_violation, "malformed MD5 authentication request");
      }
      std::span<const std::uint8_t, 4> salt(request.md5_salt.data(), 4);
      const std::string& password = credentials_.password;
      if (is_md5_hash(password)) {
        wire::password_message(reply, wire::md5_response_from_stored(password, salt));
        return Step::reply;
      }
      const std::string* plain = plaintext("MD5", error);
      if (plain == nullptr) return Step::failed;
      wire::password_message(reply, wire::md5_password_response(credentials_.user, *plain, salt));
      return Step::reply;
    }
    case AuthCode::sasl:
    case AuthCode::sasl_continue:
    case AuthCode::sasl_final:
      return on_sasl(request, reply, error);
    case AuthCode::gss:
    case AuthCode::gss_continue:
      return failed(error, errc::unsupported_auth_method,
                    "server requested GSSAPI authentication, which pgshift does not support");
    case AuthCode::sspi:
      return failed(error, errc::unsupported_auth_method,
                    "server requested SSPI authentication, which pgshift does not support");
  }
  return failed(error, errc::unsupported_auth_method,
                "server requested an unsupported authentication method (code " +
                    std::to_string(static_cast<std::int32_t>(request.code)) + ")");
}

Step UpstreamAuth::on_sasl(const wire::Authentication& request, wire::Bytes& reply,
                           ConnectError& error) {
  if (request.code == AuthCode::sasl) {
    if (scram_state_ != Scram::none) {
      return failed(error, errc::protocol_violation, "server restarted SASL authentication");
    }
    const auto& mechanisms = request.sasl_mechanisms;
    auto has = [&](std::string_view m) {
      return std::find(mechanisms.begin(), mechanisms.end(), m) != mechanisms.end();
    };
    if (!has(kScram)) {
      if (has(kScramPlus)) {
        return failed(error, errc::unsupported_auth_method,
                      "server requires SCRAM-SHA-256-PLUS (channel binding), which pgshift "
                      "does not support");
      }
      std::string offered;
      for (auto m : mechanisms) offered += (offered.empty() ? "" : ", ") + std::string(m);
      return failed(error, errc::unsupported_auth_method,
                    "server offered no supported SASL mechanism (offered: " + offered + ")");
    }
    if (credentials_.scram_client_key && credentials_.scram_server_key) {
      scram_.emplace(*credentials_.scram_client_key, *credentials_.scram_server_key, scram_nonce_);
    } else {
      const std::string* password = plaintext("SCRAM-SHA-256", error);
      if (password == nullptr) return Step::failed;
      scram_.emplace(*password, scram_nonce_);
    }
    wire::sasl_initial_response(reply, kScram, scram_->client_first());
    scram_state_ = Scram::sent_first;
    return Step::reply;
  }

  if (request.code == AuthCode::sasl_continue) {
    if (scram_state_ != Scram::sent_first) {
      return failed(error, errc::protocol_violation, "unexpected SASLContinue from server");
    }
    std::string client_final;
    if (auto ec = scram_->handle_server_first(as_text(request.sasl_data), client_final)) {
      return failed(error, error_code(ec), "SCRAM exchange failed: " + ec.message());
    }
    wire::sasl_response(reply, client_final);
    scram_state_ = Scram::sent_final;
    return Step::reply;
  }

  // sasl_final
  if (scram_state_ != Scram::sent_final) {
    return failed(error, errc::protocol_violation, "unexpected SASLFinal from server");
  }
  if (auto ec = scram_->handle_server_final(as_text(request.sasl_data))) {
    return failed(error, error_code(ec),
                  ec == wire::errc::auth_failed
                      ? "server's SCRAM signature is invalid (it does not know the password)"
                      : "malformed SCRAM server-final-message: " + ec.message());
  }
  scram_state_ = Scram::verified;
  return Step::wait;
}

}  // namespace pgshift::pool
