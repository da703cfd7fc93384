// The startup phase: StartupMessage, authentication, then the parameters and the cancel key
// up to the first ReadyForQuery.
// https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.7.3
#include <string>
#include <string_view>

#include "pool/message_reader.hpp"
#include "pool/upstream_auth.hpp"
#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"
#include "wire/byte_order.hpp"
#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::pool::detail {

namespace be = wire::be;

namespace {

std::vector<std::pair<std::string, std::string>> startup_parameters(const UpstreamParams& p) {
  std::vector<std::pair<std::string, std::string>> params;
  params.emplace_back("user", p.credentials.user);
  if (!p.database.empty()) params.emplace_back("database", p.database);
  for (const auto& [name, value] : p.startup_params) {
    if (name != "user" && name != "database") params.emplace_back(name, value);
  }
  return params;
}

void fail_from_server(ConnectError& error, wire::Body body, const std::string& where) {
  wire::ErrorFields fields;
  if (parse_error_fields(body, fields) || fields.sqlstate().empty()) {
    fail(error, errc::protocol_violation, "malformed ErrorResponse from " + where);
    return;
  }
  fail(error, errc::server_error,
       where + " refused the connection: " + std::string(fields.severity()) + " " +
           std::string(fields.sqlstate()) + " " + std::string(fields.message()));
  error.sqlstate = fields.sqlstate();
  error.server_message = fields.message();
}

// NegotiateProtocolVersion: Int32 newest minor version, Int32 count, count option names.
std::string describe_negotiation(wire::Body body) {
  auto int32_at = [&](std::size_t i) { return wire::read_be32(body.data() + i); };
  if (body.size() < 8) return "malformed NegotiateProtocolVersion";
  // The docs say "newest minor version"; servers send the whole version code (3 << 16 | minor).
  const std::uint32_t newest = int32_at(0);
  std::string text =
      "server supports protocol " +
      (newest >= 0x10000 ? std::to_string(newest >> 16) + "." + std::to_string(newest & 0xffff)
                         : "3." + std::to_string(newest));
  std::string_view rest(reinterpret_cast<const char*>(body.data()) + 8, body.size() - 8);
  const std::uint32_t count = int32_at(4);
  for (std::uint32_t i = 0; i < count && !rest.empty(); ++i) {
    const auto end = rest.find('\0');
    text += (i == 0 ? " and does not recognise: " : ", ") + std::string(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
  }
  return text;
}

std::string describe_read_error(const error_code& ec, const BackendMessage& msg) {
  if (ec == asio::error::eof) return "server closed the connection";
  if (ec == errc::protocol_violation && msg.type != 0) {
    return std::string("unexpected message '") + msg.type + "'";
  }
  return ec.message();
}

enum class AuthProgress { more, done, failed };

// One authentication request of the server, answered if it wants an answer. `failed` has
// filled `error`.
asio::awaitable<AuthProgress> answer_authentication(ServerConnection& conn, UpstreamAuth& auth,
                                                    wire::Body body, const std::string& where,
                                                    ConnectError& error) {
  wire::Authentication request;
  if (auto ec = wire::parse_authentication(body, request)) {
    fail(error, error_code(ec), "malformed authentication request from " + where);
    co_return AuthProgress::failed;
  }
  wire::Bytes out;
  switch (auth.on_request(request, out, error)) {
    case UpstreamAuth::Step::reply:
      if (auto ec = co_await conn.stream.write_all(out)) {
        fail(error, ec, "could not send authentication to " + where + ": " + ec.message());
        co_return AuthProgress::failed;
      }
      co_return AuthProgress::more;
    case UpstreamAuth::Step::wait:
      co_return AuthProgress::more;
    case UpstreamAuth::Step::done:
      co_return AuthProgress::done;
    case UpstreamAuth::Step::failed:
      error.message = "authentication with " + where + " failed: " + error.message;
      co_return AuthProgress::failed;
  }
  co_return AuthProgress::failed;
}

}  // namespace

asio::awaitable<bool> run_startup(ServerConnection& conn, const UpstreamParams& params,
                                  ConnectError& error, std::string_view& stage) {
  const std::string where = describe_endpoint(params);
  stage = "sending the startup message";
  wire::Bytes out;
  wire::startup_message(out, startup_parameters(params));
  if (auto ec = co_await conn.stream.write_all(out)) {
    fail(error, ec, "could not send the startup message to " + where + ": " + ec.message());
    co_return false;
  }

  stage = "authenticating";
  UpstreamAuth auth(params.credentials);
  bool authenticated = false;
  MessageReader reader(conn.stream,
                       wire::type_set({be::authentication, be::error_response, be::parameter_status,
                                       be::backend_key_data, be::notice_response,
                                       be::negotiate_protocol_version, be::ready_for_query}));
  for (;;) {
    BackendMessage msg;
    if (auto ec = co_await reader.next(msg)) {
      fail(error, ec,
           "startup with " + where + " failed (" + std::string(stage) +
               "): " + describe_read_error(ec, msg));
      co_return false;
    }
    switch (msg.type) {
      case be::error_response:
        fail_from_server(error, msg.body, where);
        co_return false;
      case be::notice_response:  // nothing to act on
        continue;
      case be::negotiate_protocol_version:
        fail(error, errc::unsupported_protocol_version,
             where + " does not accept the requested protocol: " + describe_negotiation(msg.body));
        co_return false;
      case be::authentication: {
        if (authenticated) break;  // a second authentication after AuthenticationOk
        switch (co_await answer_authentication(conn, auth, msg.body, where, error)) {
          case AuthProgress::more:
            continue;
          case AuthProgress::done:
            authenticated = true;
            stage = "waiting for ReadyForQuery";
            continue;
          case AuthProgress::failed:
            co_return false;
        }
        break;
      }
      case be::parameter_status: {
        wire::ParameterStatus status;
        if (!authenticated || wire::parse_parameter_status(msg.body, status)) break;
        conn.parameters.emplace_back(status.name, status.value);
        continue;
      }
      case be::backend_key_data: {
        wire::BackendKeyData key;
        if (!authenticated || wire::parse_backend_key_data(msg.body, key)) break;
        conn.backend_key = {key.pid, key.secret};
        continue;
      }
      case be::ready_for_query:
        if (!authenticated || wire::parse_ready_for_query(msg.body, conn.txn_status)) break;
        co_return true;
      default:
        break;
    }
    fail(error, errc::protocol_violation,
         "startup with " + where + " failed: unexpected or malformed message '" +
             std::string(1, msg.type) + "' while " + std::string(stage));
    co_return false;
  }
}

}  // namespace pgshift::pool::detail
