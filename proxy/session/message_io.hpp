#pragma once
// Whole-message reads and small writes for the login phase (startup, authentication), where
// every message must be inspected. Not used on the relay hot path.
#include <boost/asio/awaitable.hpp>
#include <string_view>
#include <vector>

#include "pool/stream.hpp"
#include "proxy/session/io_buffer.hpp"
#include "wire/builder.hpp"
#include "wire/scanner.hpp"
#include "wire/startup.hpp"

namespace pgshift::proxy {

namespace asio = boost::asio;
using pool::error_code;

struct OwnedMessage {
  std::uint8_t type = 0;
  std::vector<std::uint8_t> body;
};

// Reads one typed message (any type is "wanted"). A framing error is returned as a wire
// error code; the connection must then be closed.
asio::awaitable<error_code> read_message(pool::Stream& stream, IoBuffer& buf,
                                         wire::MessageScanner& scanner, OwnedMessage& out);

// Reads one startup-phase packet (no type byte).
asio::awaitable<error_code> read_startup_packet(pool::Stream& stream, IoBuffer& buf,
                                                const wire::Limits& limits,
                                                wire::StartupResult& out);

// Sends an ErrorResponse (severity FATAL by default) and, for FATAL, nothing else: the
// caller closes the connection.
asio::awaitable<error_code> send_error(pool::Stream& stream, std::string_view sqlstate,
                                       std::string_view message,
                                       std::string_view severity = "FATAL",
                                       std::string_view detail = {});

}  // namespace pgshift::proxy
