#include "pool/message_reader.hpp"

#include "pool/errc.hpp"
#include "wire/byte_order.hpp"

namespace pgshift::pool {

MessageReader::MessageReader(Stream& stream, wire::MessageScanner::TypeSet wanted,
                             wire::Limits limits)
    : stream_(stream), scanner_(wire::Direction::backend, limits, wanted) {}

asio::awaitable<error_code> MessageReader::next(BackendMessage& out) {
  constexpr std::size_t header_size = 5;  // type byte + int32 length
  out = {};
  buf_.resize(header_size);
  if (auto ec = co_await stream_.read_exact(buf_)) co_return ec;
  out.type = static_cast<char>(buf_[0]);

  auto result = scanner_.feed(buf_);
  if (result.kind == wire::ScanKind::need_more) {
    // The scanner accepted the header (type valid, length within limits), so the length
    // can be used to size the read.
    const std::uint32_t length = wire::read_be32(buf_.data() + 1);
    buf_.resize(std::size_t{length} + 1);
    if (auto ec = co_await stream_.read_exact(std::span(buf_).subspan(header_size))) co_return ec;
    result = scanner_.feed(buf_);
  }
  switch (result.kind) {
    case wire::ScanKind::message:
      if (result.consumed != buf_.size()) co_return errc::protocol_violation;
      out.body = result.body;
      co_return error_code{};
    case wire::ScanKind::error:
      co_return error_code(result.error);
    case wire::ScanKind::skip:  // a type we do not expect here
    case wire::ScanKind::need_more:
      break;
  }
  co_return errc::protocol_violation;
}

}  // namespace pgshift::pool
