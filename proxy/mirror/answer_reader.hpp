#pragma once
// Backend messages of the mirror's connection, read in bulk: one read_some takes whatever
// the server has sent (the answers of many pipelined transactions at once) and next_buffered()
// hands the messages out of that buffer without another system call. Messages outside the
// wanted set (RowDescription, DataRow, NoticeResponse...) are skipped in pieces, so a large
// DataRow is never held whole. Framing is validated by wire::MessageScanner; after an error
// the reader is unusable (the connection must be closed) until reset().
//
// Not thread-safe: the mirror thread only, one reader per connection.
#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <vector>

#include "pool/message_reader.hpp"
#include "pool/stream.hpp"
#include "wire/scanner.hpp"

namespace pgshift::mirror {

class AnswerReader {
 public:
  enum class Next { message, need_read, error };

  explicit AnswerReader(wire::MessageScanner::TypeSet wanted);

  // The next whole wanted message already received, if any. `out.body` stays valid until the
  // next call of next_buffered() or read_more(). On error, `error()` says why.
  Next next_buffered(pool::BackendMessage& out);
  // One read from the stream (at least one byte, as much as the buffer takes).
  boost::asio::awaitable<pool::error_code> read_more(pool::Stream& stream);
  // next_buffered(), reading as often as needed.
  boost::asio::awaitable<pool::error_code> next(pool::Stream& stream, pool::BackendMessage& out);

  void set_wanted(wire::MessageScanner::TypeSet wanted) { scanner_.set_wanted(wanted); }
  pool::error_code error() const { return error_; }
  // Nothing received and not handed out yet (between answers on an idle connection).
  bool empty() const { return begin_ == end_ && scanner_.at_boundary(); }
  // A new connection: drops what was buffered.
  void reset();

 private:
  wire::MessageScanner::TypeSet wanted_;
  wire::MessageScanner scanner_;
  std::vector<std::uint8_t> buf_;
  std::size_t begin_ = 0, end_ = 0;  // unconsumed bytes
  pool::error_code error_;
};

}  // namespace pgshift::mirror
