#pragma once
// Reads whole backend messages one at a time from a Stream during connection setup. Reads
// the 5-byte header, lets MessageScanner validate type and length, then reads exactly the
// body: it never reads past the current message, so nothing that arrives later (after
// ReadyForQuery) is left in a private buffer. Not for the relay path (it buffers messages
// whole). Not thread-safe.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <span>
#include <vector>

#include "pool/stream.hpp"
#include "wire/scanner.hpp"

namespace pgshift::pool {

struct BackendMessage {
  char type = 0;
  std::span<const std::uint8_t> body;  // valid until the next call to next()
};

class MessageReader {
 public:
  // Messages outside `wanted` fail with errc::protocol_violation (type still reported).
  MessageReader(Stream& stream, wire::MessageScanner::TypeSet wanted, wire::Limits limits = {});

  // I/O errors as they are, framing errors as wire::errc (the stream must then be closed).
  asio::awaitable<error_code> next(BackendMessage& out);

 private:
  Stream& stream_;
  wire::MessageScanner scanner_;
  std::vector<std::uint8_t> buf_;
};

}  // namespace pgshift::pool
