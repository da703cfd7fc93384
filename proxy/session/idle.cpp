// Hot and idle sessions (docs/architecture.md). A session that is working keeps its read
// buffers and keeps a read pending, so each message costs no epoll re-arm and no new
// coroutine. A session that has been quiet for a sweep period gives its buffers back and
// waits for readiness without them, and without a coroutine frame on the client side, so
// idle clients cost little memory.
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
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

void ClientSession::on_client_readable() {
  if (end_reason_ != EndReason::none) {
    end(EndReason::client_closed);
    return;
  }
  // Bytes, EOF or an error: the client direction reads and finds out which.
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
