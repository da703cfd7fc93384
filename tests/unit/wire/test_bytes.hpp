#pragma once
// Byte-building helpers for wire tests: raw frames written by hand, independent of builder.cpp.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::wire::test {

using Bytes = std::vector<std::uint8_t>;

inline Bytes bytes(std::string_view s) {
  return Bytes(s.begin(), s.end());
}

// All bytes of a string literal, embedded NULs included, without its implicit final NUL.
template <std::size_t N>
Bytes lit(const char (&s)[N]) {
  return Bytes(s, s + N - 1);
}

inline void put16(Bytes& b, std::uint16_t v) {
  b.push_back(static_cast<std::uint8_t>(v >> 8));
  b.push_back(static_cast<std::uint8_t>(v));
}

inline void put32(Bytes& b, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<std::uint8_t>(v >> s));
}

inline void put_str(Bytes& b, std::string_view s) {
  b.insert(b.end(), s.begin(), s.end());
  b.push_back(0);
}

inline void append(Bytes& b, const Bytes& more) {
  b.insert(b.end(), more.begin(), more.end());
}

// A typed frame with a correct length field.
inline Bytes frame(char type, const Bytes& body) {
  Bytes b{static_cast<std::uint8_t>(type)};
  put32(b, static_cast<std::uint32_t>(body.size() + 4));
  append(b, body);
  return b;
}

// A typed frame with an arbitrary (possibly lying) length field.
inline Bytes header(char type, std::uint32_t length) {
  Bytes b{static_cast<std::uint8_t>(type)};
  put32(b, length);
  return b;
}

inline Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) append(b, p);
  return b;
}

inline std::string as_string(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

}  // namespace pgshift::wire::test
