// Upstream TLS: the client context per TLS setting, and SSLRequest + handshake.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <array>
#include <boost/asio/ssl/error.hpp>
#include <cstdio>
#include <stdexcept>

#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"
#include "wire/message_types.hpp"

namespace pgshift::pool {
namespace {

using config::UpstreamTlsMode;

// OpenSSL's own words, without Asio's " (SSL routines)" suffix; for a failed certificate
// check, the verify result says why ("unable to get local issuer certificate", "hostname
// mismatch"...).
std::string tls_failure_reason(Stream& stream, const error_code& ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return "server closed the connection";
  }
  if (ec.category() != asio::error::get_ssl_category()) return ec.message();
  const auto code = static_cast<unsigned long>(ec.value());
  if (ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
      stream.tls_stream() != nullptr) {
    const long result = SSL_get_verify_result(stream.tls_stream()->native_handle());
    if (result != X509_V_OK) {
      return std::string("certificate verify failed: ") + X509_verify_cert_error_string(result);
    }
  }
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : ec.message();
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_upstream_tls_context(const config::UpstreamTls& tls) {
  if (tls.mode == UpstreamTlsMode::disable) return nullptr;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  if (SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION) != 1) {
    throw std::runtime_error("upstream TLS: cannot require TLS 1.2 or newer");
  }
  if (tls.mode == UpstreamTlsMode::require) {
    ctx->set_verify_mode(asio::ssl::verify_none);
    return ctx;
  }
  // verify-ca and verify-full: the chain must lead to ca_file. The host name check of
  // verify-full is per connection (UpstreamParams::tls_server_name or host), done by
  // Stream::handshake.
  const char* mode = tls.mode == UpstreamTlsMode::verify_ca ? "verify-ca" : "verify-full";
  if (tls.ca_file.empty()) {
    throw std::runtime_error(std::string("upstream TLS mode ") + mode + " needs a CA file");
  }
  error_code ec;
  ctx->load_verify_file(tls.ca_file, ec);
  if (ec) {
    throw std::runtime_error("cannot load upstream TLS CA file \"" + tls.ca_file +
                             "\": " + ec.message());
  }
  ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
  return ctx;
}

namespace detail {

asio::awaitable<bool> negotiate_tls(Stream& stream, const UpstreamParams& params,
                                    ConnectError& error, std::string_view& stage) {
  const std::string where = describe_endpoint(params);
  stage = "negotiating TLS";
  wire::Bytes request;
  wire::ssl_request(request);
  if (auto ec = co_await stream.write_all(request)) {
    fail(error, ec, "could not send SSLRequest to " + where + ": " + ec.message());
    co_return false;
  }
  // Exactly one byte: anything after the acceptance must be TLS records, read by OpenSSL.
  std::array<std::uint8_t, 1> answer{};
  if (auto ec = co_await stream.read_exact(answer)) {
    fail(error, ec,
         "TLS negotiation with " + where + " failed: " +
             (ec == asio::error::eof ? std::string("server closed the connection") : ec.message()));
    co_return false;
  }
  switch (answer[0]) {
    case wire::ssl_answer::accepted:
      break;
    case wire::ssl_answer::refused:
      fail(error, errc::tls_not_supported,
           "TLS negotiation with " + where + " failed: server does not support TLS");
      co_return false;
    case wire::be::error_response:
      // A pre-7.0 style ErrorResponse to SSLRequest. Its body is not read: the server is not
      // authenticated yet (libpq also refuses to display it).
      fail(error, errc::protocol_violation,
           "TLS negotiation with " + where + " failed: server sent an error for SSLRequest");
      co_return false;
    default: {
      std::array<char, 8> hex{};
      std::snprintf(hex.data(), hex.size(), "0x%02x", answer[0]);
      fail(error, errc::protocol_violation,
           "TLS negotiation with " + where + " failed: unexpected answer " + hex.data() +
               " to SSLRequest");
      co_return false;
    }
  }

  stage = "in the TLS handshake";
  const std::string& server_name =
      params.tls_server_name.empty() ? params.host : params.tls_server_name;
  const std::string verify_host =
      params.tls_mode == UpstreamTlsMode::verify_full ? server_name : std::string();
  auto ec = co_await stream.handshake(*params.tls_context, asio::ssl::stream_base::client,
                                      server_name, verify_host);
  if (ec) {
    fail(error, ec, "TLS handshake with " + where + " failed: " + tls_failure_reason(stream, ec));
    co_return false;
  }
  co_return true;
}

}  // namespace detail
}  // namespace pgshift::pool
