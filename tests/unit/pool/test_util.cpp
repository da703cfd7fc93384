#include "test_util.hpp"

#include <boost/asio/ip/tcp.hpp>

#include "pool/message_reader.hpp"
#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"
#include "wire/byte_order.hpp"
#include "wire/messages.hpp"

namespace pgshift::pool::test {
namespace {

std::uint32_t be32(std::span<const std::uint8_t> b, std::size_t at) {
  return wire::read_be32(b.data() + at);
}

asio::awaitable<QueryResult> run_query(ServerConnection& conn, std::string sql, bool send) {
  QueryResult result;
  if (send) {
    wire::Bytes out;
    wire::query(out, sql);
    if ((result.ec = co_await conn.stream.write_all(out))) co_return result;
  }
  MessageReader reader(conn.stream, wire::type_set({'T', 'D', 'C', 'E', 'N', 'Z', 'I', 'S', 'A'}));
  for (;;) {
    BackendMessage msg;
    if ((result.ec = co_await reader.next(msg))) co_return result;
    if (msg.type == 'D') {
      // DataRow: Int16 column count, then per column Int32 length (-1 = NULL) and bytes.
      if (msg.body.size() >= 6) {
        const auto len = static_cast<std::int32_t>(be32(msg.body, 2));
        if (len > 0 && msg.body.size() >= 6 + static_cast<std::size_t>(len)) {
          result.first_column.emplace_back(reinterpret_cast<const char*>(msg.body.data() + 6),
                                           static_cast<std::size_t>(len));
        } else {
          result.first_column.emplace_back();
        }
      }
    } else if (msg.type == 'E') {
      wire::ErrorFields fields;
      if (!wire::parse_error_fields(msg.body, fields)) result.sqlstate = fields.sqlstate();
    } else if (msg.type == 'Z') {
      result.status = msg.body.empty() ? '?' : static_cast<char>(msg.body[0]);
      co_return result;
    }
  }
}

}  // namespace

std::string ConnInfo::parameter(const std::string& name) const {
  for (const auto& [k, v] : parameters) {
    if (k == name) return v;
  }
  return {};
}

ConnInfo info_of(const ServerConnection& conn) {
  return {conn.stream.is_tls(), conn.txn_status, conn.backend_key, conn.parameters};
}

std::uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return acceptor.local_endpoint().port();
}

asio::awaitable<QueryResult> simple_query(ServerConnection& conn, const std::string& sql,
                                          std::chrono::milliseconds timeout, bool send) {
  error_code why;
  auto result = co_await detail::with_timeout(run_query(conn, sql, send), timeout, why);
  if (result) co_return std::move(*result);
  QueryResult failed;
  failed.ec = why;
  co_return failed;
}

}  // namespace pgshift::pool::test
