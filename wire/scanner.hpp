#pragma once
// Incremental framing of regular (typed) protocol messages in one direction.
// Pure: no sockets, no allocation on the hot path. See
// https://www.postgresql.org/docs/15/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS
//
// Usage: keep unconsumed bytes in a buffer; call feed() on them until it returns NeedMore,
// advancing by `consumed` each time. Messages whose type is in the "wanted" set are
// returned whole (body included) once all their bytes are present; every other message is
// returned as Skip pieces that can be forwarded without ever being held in full, so a
// 64 MB DataRow never needs a 64 MB buffer. After an Error the scanner stays in the error
// state: framing is lost and the connection must be closed (never re-scanned).
// Not thread-safe; one scanner per connection direction.
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "wire/errc.hpp"
#include "wire/limits.hpp"

namespace pgshift::wire {

enum class Direction { frontend, backend };  // frontend = sent by clients

enum class ScanKind {
  need_more,  // consumed == 0; read more bytes (the wanted message may need a bigger buffer:
              // see bytes_needed())
  message,    // a whole wanted message: type, length, body valid; consumed = 5 + body size
  skip,       // consumed bytes of a not-wanted message (first piece includes the header)
  error,      // framing lost: error holds why; consumed == 0
};

struct ScanResult {
  ScanKind kind = ScanKind::need_more;
  std::size_t consumed = 0;
  std::uint8_t type = 0;               // message type byte (message and skip)
  std::uint32_t length = 0;            // length field (includes itself), message and skip
  bool first_piece = false;            // skip: this piece starts with the 5-byte header
  bool last_piece = false;             // skip: this piece ends the message
  std::span<const std::uint8_t> body;  // message: the body (length - 4 bytes)
  std::error_code error;
};

class MessageScanner {
 public:
  using TypeSet = std::bitset<256>;

  MessageScanner(Direction dir, Limits limits, TypeSet wanted);

  ScanResult feed(std::span<const std::uint8_t> data);

  // While a wanted message is incomplete: total bytes (header + body) it needs in the buffer.
  std::size_t bytes_needed() const noexcept { return needed_; }
  bool failed() const noexcept { return failed_; }
  // True between messages (not inside a skipped body).
  bool at_boundary() const noexcept { return skip_remaining_ == 0; }
  void set_wanted(TypeSet wanted) noexcept { wanted_ = wanted; }

  // The limit that applies to a message of this type in this direction, or 0 if the type is
  // not valid in this direction at all.
  static std::uint32_t max_length_for(Direction dir, const Limits& limits, std::uint8_t type);

 private:
  Direction dir_;
  Limits limits_;
  TypeSet wanted_;
  std::uint64_t skip_remaining_ = 0;  // body bytes of the current skipped message still to come
  std::uint8_t skip_type_ = 0;
  std::uint32_t skip_length_ = 0;
  std::size_t needed_ = 0;
  bool failed_ = false;
  errc error_ = errc::ok;  // why the scanner failed; reported again on every later feed()
};

// Convenience: a TypeSet from a list of type bytes.
MessageScanner::TypeSet type_set(std::initializer_list<char> types);

}  // namespace pgshift::wire
