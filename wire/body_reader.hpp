#pragma once
// Internal to wire/: a bounds-checked reader over one message body. Every read checks the
// remaining size first; the first failure sticks, so a parser can read all its fields and
// check error() once. Integers are big-endian (network order), as everywhere in the protocol.
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

#include "wire/errc.hpp"

namespace pgshift::wire::detail {

class BodyReader {
 public:
  explicit BodyReader(std::span<const std::uint8_t> body) : body_(body) {}

  std::uint8_t u8() {
    if (!need(1)) return 0;
    return body_[pos_++];
  }
  std::int16_t i16() { return static_cast<std::int16_t>(be(2)); }
  // Counts (parameters, format codes, columns) are Int16 on the wire but unsigned in
  // PostgreSQL (pq_getmsgint(msg, 2) returns 0..65535): read them with u16, never i16.
  std::uint16_t u16() { return static_cast<std::uint16_t>(be(2)); }
  std::int32_t i32() { return static_cast<std::int32_t>(be(4)); }
  std::uint32_t u32() { return be(4); }

  // A NUL-terminated string; the view excludes the NUL. A missing NUL is malformed.
  std::string_view cstr() {
    if (error_) return {};
    if (remaining() == 0) {  // also keeps a null data() away from memchr
      error_ = errc::malformed_message;
      return {};
    }
    const std::uint8_t* begin = body_.data() + pos_;
    const auto* nul = static_cast<const std::uint8_t*>(std::memchr(begin, 0, remaining()));
    if (nul == nullptr) {
      error_ = errc::malformed_message;
      return {};
    }
    const auto len = static_cast<std::size_t>(nul - begin);
    pos_ += len + 1;
    return {reinterpret_cast<const char*>(begin), len};
  }

  std::span<const std::uint8_t> bytes(std::size_t n) {
    if (!need(n)) return {};
    auto out = body_.subspan(pos_, n);
    pos_ += n;
    return out;
  }
  std::span<const std::uint8_t> rest() { return bytes(remaining()); }

  std::size_t remaining() const noexcept { return body_.size() - pos_; }
  bool at_end() const noexcept { return pos_ == body_.size(); }

  void fail(errc e) {
    if (!error_) error_ = e;
  }
  // Final verdict: the first error, or malformed_message if bytes are left over.
  std::error_code finish() {
    if (!error_ && !at_end()) error_ = errc::malformed_message;
    return error_;
  }
  std::error_code error() const { return error_; }

 private:
  bool need(std::size_t n) {
    if (error_) return false;
    if (remaining() < n) {
      error_ = errc::truncated_message;
      return false;
    }
    return true;
  }
  std::uint32_t be(std::size_t n) {
    if (!need(n)) return 0;
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v = (v << 8) | body_[pos_ + i];
    pos_ += n;
    return v;
  }

  std::span<const std::uint8_t> body_;
  std::size_t pos_ = 0;
  std::error_code error_;
};

}  // namespace pgshift::wire::detail
