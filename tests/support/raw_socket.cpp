#include "raw_socket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

namespace pgshift::test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

RawSocket RawSocket::connect(const std::string& host, std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  const std::string ip = host == "localhost" ? "127.0.0.1" : host;
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument("RawSocket: not an IPv4 address: " + host);
  }
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::system_error(errno, std::generic_category(),
                            "connect " + ip + ":" + std::to_string(port));
  }
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return RawSocket(std::move(fd));
}

bool RawSocket::send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == EPIPE || errno == ECONNRESET) {
        closed_ = true;
        return false;
      }
      throw std::system_error(errno, std::generic_category(), "send");
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool RawSocket::read_some(std::string& out, Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
  pollfd p{fd_.get(), POLLIN, 0};
  const int ready = ::poll(&p, 1, static_cast<int>(std::max<milliseconds::rep>(left.count(), 0)));
  if (ready < 0 && errno == EINTR) return true;
  if (ready < 0) throw std::system_error(errno, std::generic_category(), "poll");
  if (ready == 0) return false;
  char buffer[65536];
  const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
  if (n < 0 && errno == EINTR) return true;
  if (n < 0 && errno == ECONNRESET) {
    closed_ = true;
    return true;
  }
  if (n < 0) throw std::system_error(errno, std::generic_category(), "recv");
  if (n == 0) closed_ = true;
  out.append(buffer, static_cast<std::size_t>(n));
  return true;
}

std::string RawSocket::receive(std::size_t min_bytes, milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  while (out.size() < min_bytes && !closed_ && read_some(out, deadline)) {
  }
  return out;
}

std::string RawSocket::read_until_closed(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  while (!closed_ && read_some(out, deadline)) {
  }
  return out;
}

void RawSocket::shutdown_write() {
  ::shutdown(fd_.get(), SHUT_WR);
}

}  // namespace pgshift::test
