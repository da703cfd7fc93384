#include "pool/server_pool_check.hpp"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cerrno>
#include <utility>

#include "pool/message_reader.hpp"
#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"
#include "wire/messages.hpp"

namespace pgshift::pool {
namespace {

asio::awaitable<CommandResult> exchange(ServerConnection& conn, std::string_view sql) {
  CommandResult result;
  wire::Bytes out;
  wire::query(out, sql);
  if ((result.ec = co_await conn.stream.write_all(out))) co_return result;
  // Everything a simple query may answer short of COPY: RowDescription, DataRow,
  // CommandComplete, EmptyQueryResponse, notices, ParameterStatus, notifications, errors.
  MessageReader reader(conn.stream, wire::type_set({'T', 'D', 'C', 'I', 'N', 'S', 'A', 'E', 'Z'}));
  for (;;) {
    BackendMessage msg;
    if ((result.ec = co_await reader.next(msg))) co_return result;
    switch (msg.type) {
      case 'D':
        ++result.rows;
        break;
      case 'E': {
        wire::ErrorFields fields;
        if (!wire::parse_error_fields(msg.body, fields) && result.sqlstate.empty()) {
          result.sqlstate = std::string(fields.sqlstate());
          result.message = std::string(fields.message());
        }
        if (result.sqlstate.empty()) result.sqlstate = "XX000";  // unparsable: still an error
        break;
      }
      case 'S': {
        wire::ParameterStatus ps;
        if (wire::parse_parameter_status(msg.body, ps)) break;
        bool found = false;
        for (auto& [name, value] : conn.parameters) {
          if (name == ps.name) {
            value = std::string(ps.value);
            found = true;
          }
        }
        if (!found) conn.parameters.emplace_back(ps.name, ps.value);
        break;
      }
      case 'Z': {
        char status = 0;
        if (auto ec = wire::parse_ready_for_query(msg.body, status)) {
          result.ec = ec;
          co_return result;
        }
        result.status = status;
        conn.txn_status = status;
        co_return result;
      }
      default:
        break;
    }
  }
}

}  // namespace

asio::awaitable<CommandResult> run_simple_command(ServerConnection& conn, std::string_view sql,
                                                  std::chrono::milliseconds timeout) {
  error_code why;
  auto result = co_await detail::with_timeout(exchange(conn, sql), timeout, why);
  if (result) co_return std::move(*result);
  CommandResult failed;
  failed.ec = why;
  // The answer may still be on its way: the connection is out of sync from here on.
  conn.txn_status = '?';
  co_return failed;
}

bool is_connection_alive(ServerConnection& conn) noexcept {
  if (!conn.stream.is_open()) return false;
  // Decrypted bytes OpenSSL holds would never make the socket readable.
  if (auto* tls = conn.stream.tls_stream(); tls && SSL_pending(tls->native_handle()) > 0) {
    return false;
  }
  char byte = 0;
  const ssize_t n = ::recv(conn.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return false;  // 0: EOF; > 0: the server said something while idle
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

}  // namespace pgshift::pool
