#include "net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <mutex>
#include <set>
#include <stdexcept>
#include <system_error>

#include "unique_fd.hpp"
#include "wait.hpp"

namespace pgshift::test {

namespace {

sockaddr_in loopback_address(const std::string& host, std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  const std::string ip = host == "localhost" ? "127.0.0.1" : host;
  if (::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    throw std::invalid_argument("not an IPv4 address: " + host);
  }
  return addr;
}

}  // namespace

std::uint16_t free_port() {
  static std::mutex mutex;
  static std::set<std::uint16_t> handed_out;
  for (int attempt = 0; attempt < 100; ++attempt) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr = loopback_address("127.0.0.1", 0);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::system_error(errno, std::generic_category(), "bind 127.0.0.1:0");
    }
    socklen_t len = sizeof addr;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::system_error(errno, std::generic_category(), "getsockname");
    }
    const std::uint16_t port = ntohs(addr.sin_port);
    std::lock_guard lock(mutex);
    if (handed_out.insert(port).second) return port;
  }
  throw std::runtime_error("free_port: no new free port after 100 attempts");
}

bool port_accepts(const std::string& host, std::uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) throw std::system_error(errno, std::generic_category(), "socket");
  const sockaddr_in addr = loopback_address(host, port);
  return ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
}

bool wait_for_port(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                   const std::function<bool()>& alive) {
  bool dead = false;
  const bool ok = poll_until(
      [&] {
        if (alive && !alive()) {
          dead = true;
          return true;
        }
        return port_accepts(host, port);
      },
      timeout);
  return ok && !dead;
}

}  // namespace pgshift::test
