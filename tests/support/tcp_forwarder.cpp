#include "tcp_forwarder.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <list>
#include <system_error>
#include <vector>

namespace pgshift::test {

namespace {

[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

void set_nonblocking(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
}

sockaddr_in loopback(const std::string& host, std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  ::inet_pton(AF_INET, host == "localhost" ? "127.0.0.1" : host.c_str(), &a.sin_addr);
  return a;
}

// One relayed connection: bytes read from one side wait in `pending` of the other.
struct Pair {
  UniqueFd side[2];        // 0: the client, 1: the server
  std::string pending[2];  // pending[i]: bytes to write to side[i]
  bool closed = false;
};

constexpr std::size_t kChunk = 64 * 1024;

}  // namespace

TcpForwarder::TcpForwarder(std::string host, std::uint16_t port)
    : host_(std::move(host)), target_port_(port) {
  listener_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener_) fail("socket");
  int one = 1;
  ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a = loopback("127.0.0.1", 0);
  if (::bind(listener_.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fail("bind");
  if (::listen(listener_.get(), 64) != 0) fail("listen");
  socklen_t len = sizeof a;
  ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&a), &len);
  port_ = ntohs(a.sin_port);
  set_nonblocking(listener_.get());
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) fail("pipe2");
  wake_read_.reset(fds[0]);
  wake_write_.reset(fds[1]);
  thread_ = std::thread([this] { run(); });
}

TcpForwarder::~TcpForwarder() {
  stop_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void TcpForwarder::block() {
  blocked_ = true;
  wake();
}

void TcpForwarder::unblock() {
  blocked_ = false;
  wake();
}

void TcpForwarder::wake() {
  const char c = 1;
  [[maybe_unused]] auto n = ::write(wake_write_.get(), &c, 1);
}

void TcpForwarder::run() {
  std::list<Pair> pairs;
  std::vector<pollfd> fds;
  std::vector<std::pair<Pair*, int>> owners;  // per fds entry past the first two
  std::vector<char> chunk(kChunk);
  while (!stop_) {
    const bool blocked = blocked_.load();
    fds.assign({{wake_read_.get(), POLLIN, 0}, {listener_.get(), POLLIN, 0}});
    owners.clear();
    if (!blocked) {
      for (auto& p : pairs) {
        for (int i = 0; i < 2; ++i) {
          short events = p.pending[1 - i].size() < kChunk ? POLLIN : 0;
          if (!p.pending[i].empty()) events |= POLLOUT;
          fds.push_back({p.side[i].get(), events, 0});
          owners.emplace_back(&p, i);
        }
      }
    }
    if (::poll(fds.data(), fds.size(), 1000) < 0 && errno != EINTR) return;
    if (fds[0].revents & POLLIN) {
      char drain[64];
      while (::read(wake_read_.get(), drain, sizeof drain) > 0) {
      }
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        UniqueFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!client) break;
        UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in a = loopback(host_, target_port_);
        if (!server || ::connect(server.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
          continue;  // the client sees its connection closed
        }
        int one = 1;
        for (int fd : {client.get(), server.get()}) {
          set_nonblocking(fd);
          ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        Pair& p = pairs.emplace_back();
        p.side[0] = std::move(client);
        p.side[1] = std::move(server);
      }
    }
    for (std::size_t k = 2; k < fds.size(); ++k) {
      auto [p, i] = owners[k - 2];
      if (p->closed) continue;
      const short re = fds[k].revents;
      if (re & (POLLIN | POLLHUP | POLLERR)) {
        const ssize_t n = ::read(p->side[i].get(), chunk.data(), chunk.size());
        if (n > 0) {
          p->pending[1 - i].append(chunk.data(), static_cast<std::size_t>(n));
          relayed_ += static_cast<std::uint64_t>(n);
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          p->closed = true;  // either side gone: the connection ends on both
          continue;
        }
      }
      if ((re & POLLOUT) && !p->pending[i].empty()) {
        const ssize_t n =
            ::send(p->side[i].get(), p->pending[i].data(), p->pending[i].size(), MSG_NOSIGNAL);
        if (n > 0) {
          p->pending[i].erase(0, static_cast<std::size_t>(n));
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          p->closed = true;
        }
      }
    }
    // Bytes read this turn go out at once when the other side takes them.
    for (auto& p : pairs) {
      for (int i = 0; i < 2 && !p.closed && !blocked; ++i) {
        if (p.pending[i].empty()) continue;
        const ssize_t n =
            ::send(p.side[i].get(), p.pending[i].data(), p.pending[i].size(), MSG_NOSIGNAL);
        if (n > 0) p.pending[i].erase(0, static_cast<std::size_t>(n));
      }
    }
    pairs.remove_if([](const Pair& p) { return p.closed; });
  }
}

}  // namespace pgshift::test
