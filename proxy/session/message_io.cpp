#include "proxy/session/message_io.hpp"

namespace pgshift::proxy {

asio::awaitable<error_code> read_message(pool::Stream& stream, IoBuffer& buf,
                                         wire::MessageScanner& scanner, OwnedMessage& out) {
  for (;;) {
    if (!buf.empty()) {
      auto r = scanner.feed(buf.data());
      switch (r.kind) {
        case wire::ScanKind::message:
          out.type = r.type;
          out.body.assign(r.body.begin(), r.body.end());
          buf.consume(r.consumed);
          buf.release_if_empty();
          co_return error_code{};
        case wire::ScanKind::error:
          co_return error_code(r.error);  // keeps the wire category and its message
        case wire::ScanKind::skip:
          // Every type is wanted during login; a skip cannot happen.
          co_return error_code(boost::system::errc::protocol_error,
                               boost::system::generic_category());
        case wire::ScanKind::need_more:
          if (scanner.bytes_needed() > buf.size()) buf.reserve_total(scanner.bytes_needed());
          break;
      }
    }
    auto [ec, n] = co_await stream.read_some(buf.writable());
    if (ec) co_return ec;
    buf.commit(n);
  }
}

asio::awaitable<error_code> read_startup_packet(pool::Stream& stream, IoBuffer& buf,
                                                const wire::Limits& limits,
                                                wire::StartupResult& out) {
  for (;;) {
    if (!buf.empty()) {
      out = wire::decode_startup(buf.data(), limits);
      if (out.kind != wire::StartupKind::need_more) {
        buf.consume(out.consumed);
        co_return error_code{};
      }
    }
    auto [ec, n] = co_await stream.read_some(buf.writable());
    if (ec) co_return ec;
    buf.commit(n);
  }
}

asio::awaitable<error_code> send_error(pool::Stream& stream, std::string_view sqlstate,
                                       std::string_view message, std::string_view severity,
                                       std::string_view detail) {
  wire::Bytes out;
  wire::error_response(out, {.severity = severity,
                             .sqlstate = sqlstate,
                             .message = message,
                             .detail = detail});
  co_return co_await stream.write_all(out);
}

}  // namespace pgshift::proxy
