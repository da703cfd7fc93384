#include "proxy/mirror/answer_reader.hpp"

#include <algorithm>
#include <cstring>

#include "pool/errc.hpp"

namespace pgshift::mirror {

namespace {
constexpr std::size_t kReadSize = 64 * 1024;  // one read takes many answers at once
}  // namespace

AnswerReader::AnswerReader(wire::MessageScanner::TypeSet wanted)
    : wanted_(wanted), scanner_(wire::Direction::backend, wire::Limits{}, wanted) {
  buf_.resize(kReadSize);
}

void AnswerReader::reset() {
  scanner_ = wire::MessageScanner(wire::Direction::backend, wire::Limits{}, wanted_);
  begin_ = end_ = 0;
  error_ = {};
  if (buf_.size() > 4 * kReadSize) {
    buf_.assign(kReadSize, 0);
    buf_.shrink_to_fit();
  }
}

AnswerReader::Next AnswerReader::next_buffered(pool::BackendMessage& out) {
  if (error_) return Next::error;
  for (;;) {
    auto r = scanner_.feed(std::span<const std::uint8_t>(buf_.data() + begin_, end_ - begin_));
    switch (r.kind) {
      case wire::ScanKind::message:
        begin_ += r.consumed;
        out.type = static_cast<char>(r.type);
        out.body = r.body;
        return Next::message;
      case wire::ScanKind::skip:
        begin_ += r.consumed;
        continue;
      case wire::ScanKind::error:
        error_ = pool::error_code(r.error);
        return Next::error;
      case wire::ScanKind::need_more:
        return Next::need_read;
    }
  }
}

boost::asio::awaitable<pool::error_code> AnswerReader::read_more(pool::Stream& stream) {
  if (error_) co_return error_;
  // Keep the unconsumed tail at the front, with room for a whole wanted message.
  if (begin_ > 0) {
    std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t need = std::max(scanner_.bytes_needed(), end_ + 1);
  if (buf_.size() < need || buf_.size() - end_ < kReadSize / 4) {
    buf_.resize(std::max(need, end_ + kReadSize));
  }
  auto [ec, n] = co_await stream.read_some(std::span(buf_.data() + end_, buf_.size() - end_));
  if (ec) co_return ec;
  end_ += n;
  co_return pool::error_code{};
}

boost::asio::awaitable<pool::error_code> AnswerReader::next(pool::Stream& stream,
                                                            pool::BackendMessage& out) {
  for (;;) {
    switch (next_buffered(out)) {
      case Next::message:
        co_return pool::error_code{};
      case Next::error:
        co_return error_;
      case Next::need_read:
        if (auto ec = co_await read_more(stream)) co_return ec;
    }
  }
}

}  // namespace pgshift::mirror
