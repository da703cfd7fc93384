#pragma once
// A TCP forwarder between a client under test and a server, for network partitions without
// mocks: it listens on 127.0.0.1 (a free port) and relays every accepted connection to
// host:port. block() stops moving bytes in both directions while every connection stays
// open, as a partition does (writers fill their socket buffers, readers wait); unblock()
// moves what piled up and carries on. New connections are accepted while blocked and relayed
// once unblocked. One background thread; the public methods are thread-safe.
#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "unique_fd.hpp"

namespace pgshift::test {

class TcpForwarder {
 public:
  TcpForwarder(std::string host, std::uint16_t port);  // throws std::system_error
  ~TcpForwarder();
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  std::uint16_t port() const { return port_; }  // where clients connect
  void block();
  void unblock();
  bool blocked() const { return blocked_.load(); }
  // Bytes relayed so far (both directions).
  std::uint64_t bytes_relayed() const { return relayed_.load(); }

 private:
  void run();
  void wake();

  std::string host_;
  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  UniqueFd listener_;
  UniqueFd wake_read_, wake_write_;
  std::atomic<bool> blocked_{false};
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> relayed_{0};
  std::thread thread_;
};

}  // namespace pgshift::test
