// Hot and idle sessions (docs/architecture.md). A session that is working keeps its read
// buffers and keeps a read pending, so each message costs no epoll re-arm and no new
// coroutine. A session that has been quiet for a sweep period gives its buffers back and
// waits for readiness without them, and without a coroutine frame on the client side, so
// idle clients cost little memory.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <cerrno>
#include <cstring>
#include <utility>

#include "proxy/session/idle_sweeper.hpp"
#include "proxy/session/session.hpp"

namespace pgshift::proxy {

void ClientSession::wait_for_client() {
  c2s_to(C2s::parked);
  if (ThreadSessions::of(client_.get_executor()).park(*this)) return;
  // No shared epoll set on this thread: a wait of its own.
  client_.socket().async_wait(pool::tcp::socket::wait_read,
                              [self = shared_from_this()](boost::system::error_code ec) {
                                if (ec) {
                                  self->end(EndReason::client_closed);
                                  return;
                                }
                                self->on_client_readable();
                              });
}

void ClientSession::restore_client_socket() {
  if (parked_fd_ < 0) return;
  const int fd = std::exchange(parked_fd_, -1);
  boost::system::error_code ec;
  client_.socket().assign(client_v6_ ? pool::tcp::v6() : pool::tcp::v4(), fd, ec);
  if (ec) {
    ::close(fd);
    end(EndReason::client_closed);
  }
}

namespace {

// A non-blocking recv that brought no bytes only because there were none yet (or a signal
// came): a spurious wake-up. EOF (0) or any other error means the client has gone.
bool nothing_yet(ssize_t n) {
  return n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK);
}

}  // namespace

ClientSession::Wakeup ClientSession::read_wakeup() {
  const int fd = client_.socket().native_handle();
  if (client_.is_tls()) {
    // The bytes are TLS records OpenSSL must read: only look whether the peer has gone.
    std::uint8_t byte = 0;
    const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) return Wakeup::bytes;
    return nothing_yet(n) ? Wakeup::spurious : Wakeup::closed;
  }
  std::array<std::uint8_t, 512> small;
  const ssize_t n = ::recv(fd, small.data(), small.size(), MSG_DONTWAIT);
  if (n <= 0) return nothing_yet(n) ? Wakeup::spurious : Wakeup::closed;
  const auto got = static_cast<std::size_t>(n);
  std::memcpy(client_buf_.writable().data(), small.data(), got);
  client_buf_.commit(got);
  return Wakeup::bytes;
}

void ClientSession::on_client_readable() {
  if (end_reason_ != EndReason::none) {
    end(EndReason::client_closed);
    return;
  }
  // A wake-up is read here, into a small stack buffer, before the client direction's
  // coroutine and its 16 KiB receive block exist: when many idle clients go at once (a
  // pool shut down, a node drained), each is seen closed and ends without ever holding a
  // block. Otherwise every one of them took a block before the first read completed,
  // 150 MiB for 10,000 clients, which the allocator then kept.
  switch (read_wakeup()) {
    case Wakeup::closed:
      end(EndReason::client_closed);
      return;
    case Wakeup::spurious:
      wait_for_client();
      return;
    case Wakeup::bytes:
      break;
  }
  c2s_to(C2s::woken);
  asio::co_spawn(
      client_.get_executor(), [self = shared_from_this()] { return self->mux_client_to_server(); },
      asio::detached);
}

void ClientSession::become_hot() {
  ++activity_;
  if (hot_) return;
  hot_ = true;
  metrics().hot_sessions().Increment();
  if (!hot_listed_) {
    hot_listed_ = true;
    IdleSweeper::local().add(weak_from_this());
  }
}

bool ClientSession::sweep_idle() {
  if (!hot_ || end_reason_ != EndReason::none) {
    hot_listed_ = false;
    return false;
  }
  if (activity_ != swept_activity_) {
    swept_activity_ = activity_;
    return true;
  }
  // Quiet since the last sweep. Cool down only when both directions are in an idle wait
  // (the client direction reading with nothing held; the server direction stopped, or
  // waiting with nothing held and nothing to write): cancelling those waits takes no bytes.
  const bool s2c_idle = s2c_ == S2c::stopped || (s2c_idle_wait() && local_out_.empty());
  if (c2s_ != C2s::hot_wait || !s2c_idle) return true;
  hot_ = false;
  metrics().hot_sessions().Decrement();
  hot_listed_ = false;
  boost::system::error_code ignored;
  client_.socket().cancel(ignored);  // the client direction waits again without its buffer
  if (s2c_ != S2c::stopped && server_) {
    s2c_to(S2c::waking);  // the server direction, too
    server_->stream.socket().cancel(ignored);
  }
  return false;
}

}  // namespace pgshift::proxy
