#pragma once
// A plain blocking TCP client for protocol-abuse tests (garbage bytes, bad length prefixes,
// truncated startup packets): send exact bytes, read what comes back, see whether the peer
// closed. Sends never raise SIGPIPE. Not thread-safe; movable.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "unique_fd.hpp"

namespace pgshift::test {

class RawSocket {
 public:
  // Connects to host:port (IPv4 or "localhost"); throws std::system_error on failure.
  static RawSocket connect(const std::string& host, std::uint16_t port);

  // Writes all bytes. False if the peer has closed or reset the connection.
  bool send(std::string_view bytes);

  // Reads until at least min_bytes have arrived, the peer closes, or the timeout passes.
  std::string receive(std::size_t min_bytes, std::chrono::milliseconds timeout);

  // Reads everything until the peer closes (closed() becomes true) or the timeout passes.
  std::string read_until_closed(std::chrono::milliseconds timeout);

  bool closed() const { return closed_; }  // EOF or reset seen
  void shutdown_write();
  int fd() const { return fd_.get(); }

 private:
  explicit RawSocket(UniqueFd fd) : fd_(std::move(fd)) {}
  // Appends what one read returns to out; false on timeout.
  bool read_some(std::string& out, std::chrono::steady_clock::time_point deadline);

  UniqueFd fd_;
  bool closed_ = false;
};

}  // namespace pgshift::test
