#pragma once
// Test driver: decodes one direction of a connection as the proxy would, from bytes that arrive
// in arbitrary chunks, and records what it saw as strings. Feeding the same stream split
// differently must give the same record; that is what the split tests compare.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "wire/limits.hpp"
#include "wire/scanner.hpp"

namespace pgshift::wire::test {

// Decodes a whole message body with the matching parse_* and describes the result.
std::string describe_message(Direction dir, std::uint8_t type, std::span<const std::uint8_t> body);

class StreamDecoder {
 public:
  // with_startup: the stream begins with startup-phase packets (frontend only).
  StreamDecoder(std::span<const std::uint8_t> stream, Direction dir, MessageScanner::TypeSet wanted,
                bool with_startup = false, Limits limits = {});

  // The first `received` bytes of the stream have now arrived; decode all that can be.
  // Invariants of the scanner (consumed, pieces, bytes_needed) are checked with gtest.
  void deliver(std::size_t received);

  const std::vector<std::string>& events() const { return events_; }
  bool failed() const { return failed_; }
  std::size_t consumed() const { return pos_; }

 private:
  void decode_startup_phase();
  void decode_messages();

  std::span<const std::uint8_t> stream_;
  Direction dir_;
  Limits limits_;
  MessageScanner scanner_;
  bool in_startup_;
  std::size_t received_ = 0;
  std::size_t pos_ = 0;
  std::size_t skip_start_ = 0;  // where the message being skipped began
  bool failed_ = false;
  std::vector<std::string> events_;
};

// Decodes `stream` delivered in the given chunk sizes (the rest at the end, if any).
std::vector<std::string> decode_in_chunks(std::span<const std::uint8_t> stream, Direction dir,
                                          MessageScanner::TypeSet wanted, bool with_startup,
                                          std::span<const std::size_t> chunks);

}  // namespace pgshift::wire::test
