#include "pool/server_pool_check.hpp"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "pool/message_reader.hpp"
#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"
#include "wire/byte_order.hpp"
#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::pool {

namespace be = wire::be;

namespace {

// DataRow: Int16 column count, then per column Int32 length (-1: NULL) and the bytes.
void read_row(wire::Body body, std::vector<std::optional<std::string>>& row) {
  const auto* p = body.data();
  std::size_t left = body.size();
  if (left < 2) return;
  const std::uint16_t n = wire::read_be16(p);
  p += 2;
  left -= 2;
  for (std::uint16_t i = 0; i < n && left >= 4; ++i) {
    const auto len = static_cast<std::int32_t>(wire::read_be32(p));
    p += 4;
    left -= 4;
    if (len < 0) {
      row.emplace_back(std::nullopt);
      continue;
    }
    const auto size = std::min<std::size_t>(static_cast<std::size_t>(len), left);
    row.emplace_back(std::string(reinterpret_cast<const char*>(p), size));
    p += size;
    left -= size;
  }
}

asio::awaitable<CommandResult> exchange(ServerConnection& conn, std::string_view sql) {
  CommandResult result;
  wire::Bytes out;
  wire::query(out, sql);
  if ((result.ec = co_await conn.stream.write_all(out))) co_return result;
  // Everything a simple query may answer short of COPY: RowDescription, DataRow,
  // CommandComplete, EmptyQueryResponse, notices, ParameterStatus, notifications, errors.
  MessageReader reader(conn.stream,
                       wire::type_set({be::row_description, be::data_row, be::command_complete,
                                       be::empty_query, be::notice_response, be::parameter_status,
                                       be::notification, be::error_response, be::ready_for_query}));
  for (;;) {
    BackendMessage msg;
    if ((result.ec = co_await reader.next(msg))) co_return result;
    switch (msg.type) {
      case be::data_row:
        if (result.rows++ == 0) read_row(msg.body, result.first_row);
        break;
      case be::error_response: {
        wire::ErrorFields fields;
        if (!wire::parse_error_fields(msg.body, fields) && result.sqlstate.empty()) {
          result.sqlstate = std::string(fields.sqlstate());
          result.message = std::string(fields.message());
        }
        if (result.sqlstate.empty()) result.sqlstate = "XX000";  // unparsable: still an error
        break;
      }
      case be::parameter_status: {
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
      case be::ready_for_query: {
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

asio::awaitable<bool> refresh_reported_parameters(ServerConnection& conn,
                                                  std::chrono::milliseconds timeout) {
  if (conn.parameters.empty()) co_return true;
  std::string sql = "SELECT ";
  for (std::size_t i = 0; i < conn.parameters.size(); ++i) {
    sql += i ? ", pg_catalog.current_setting(E'" : "pg_catalog.current_setting(E'";
    for (char c : conn.parameters[i].first) {
      if (c == '\'' || c == '\\') sql += c;
      sql += c;
    }
    sql += "', true)";
  }
  CommandResult result = co_await run_simple_command(conn, sql, timeout);
  if (!result.ok()) co_return !result.ec && result.status == wire::txn_status::idle;
  for (std::size_t i = 0; i < conn.parameters.size() && i < result.first_row.size(); ++i) {
    if (result.first_row[i]) conn.parameters[i].second = *result.first_row[i];
  }
  co_return true;
}

}  // namespace pgshift::pool
