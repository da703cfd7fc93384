#pragma once
// Protocol streams used by the split tests, written byte by byte (not with builder.cpp) so that
// the builders can be checked against them independently.
// https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <string>
#include <vector>

#include "test_bytes.hpp"
#include "wire/scanner.hpp"

namespace pgshift::wire::test {

struct StreamVector {
  std::string name;
  Direction dir;
  bool with_startup = false;
  Bytes bytes;
};

std::vector<StreamVector> valid_streams();
// Streams that start well and then lose framing; expected_error is the errc message.
struct BadStreamVector {
  StreamVector stream;
  errc expected;
};
std::vector<BadStreamVector> bad_streams();

// Startup packets.
Bytes startup_packet(std::initializer_list<std::pair<std::string_view, std::string_view>> params,
                     std::uint32_t protocol = 196608);
Bytes ssl_request_packet();
Bytes cancel_request_packet(std::int32_t pid, std::int32_t secret);

}  // namespace pgshift::wire::test
