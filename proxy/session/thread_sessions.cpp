#include "proxy/session/thread_sessions.hpp"

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <vector>

#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"

namespace pgshift::proxy {

ThreadSessions::ThreadSessions(asio::execution_context& ctx)
    : asio::execution_context::service(ctx),
      desc_(static_cast<asio::io_context&>(ctx).get_executor()) {
  epfd_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    log_warn("idle clients: no epoll set for parking; each waits with its own operation",
             {f("errno", errno)});
    return;
  }
  boost::system::error_code ec;
  desc_.assign(epfd_, ec);  // the descriptor now owns epfd_
  if (ec) {
    ::close(epfd_);
    epfd_ = -1;
  }
}

ThreadSessions::~ThreadSessions() = default;

ThreadSessions& ThreadSessions::of(const asio::any_io_executor& ex) {
  return asio::use_service<ThreadSessions>(asio::query(ex, asio::execution::context));
}

void ThreadSessions::add(ClientSession& s) {
  s.roster_ = this;
  s.roster_next_ = head_;
  s.roster_prev_ = nullptr;
  if (head_) head_->roster_prev_ = &s;
  head_ = &s;
  ++size_;
}

void ThreadSessions::remove(ClientSession& s) {
  if (s.roster_ != this) return;
  if (s.roster_prev_) {
    s.roster_prev_->roster_next_ = s.roster_next_;
  } else {
    head_ = s.roster_next_;
  }
  if (s.roster_next_) s.roster_next_->roster_prev_ = s.roster_prev_;
  s.roster_ = nullptr;
  s.roster_prev_ = s.roster_next_ = nullptr;
  --size_;
}

void ThreadSessions::for_each(const std::function<void(ClientSession&)>& fn) {
  // Collected first: fn may end sessions, which leave the list.
  std::vector<std::shared_ptr<ClientSession>> live;
  live.reserve(size_);
  for (ClientSession* s = head_; s; s = s->roster_next_) {
    if (auto p = s->weak_from_this().lock()) live.push_back(std::move(p));
  }
  for (auto& s : live) fn(*s);
}

bool ThreadSessions::park(ClientSession& s) {
  if (epfd_ < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
  ev.data.ptr = &s;
  const int fd = s.client_.socket().native_handle();
  // A socket stays in the set (disarmed) after it fired: the next park re-arms it.
  int rc = ::epoll_ctl(epfd_, s.in_park_set_ ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev);
  if (rc != 0 && errno == ENOENT && s.in_park_set_) {
    rc = ::epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  }
  if (rc != 0) return false;
  s.in_park_set_ = true;
  s.parked_self_ = s.shared_from_this();
  // Nothing uses the client socket while it is parked, unless the server direction runs
  // (it may write to the client): then it stays registered with Asio. Otherwise Asio lets
  // go of it, and of its per-descriptor state, until the client is readable again.
  if (s.s2c_ == S2c::stopped) {
    boost::system::error_code ec;
    const int released = s.client_.socket().release(ec);
    if (!ec) s.parked_fd_ = released;
  }
  ++parked_;
  arm();
  return true;
}

void ThreadSessions::unpark(ClientSession& s) {
  if (!s.parked_self_) return;
  epoll_event ev{};
  const int fd = s.parked_fd_ >= 0 ? s.parked_fd_ : s.client_.socket().native_handle();
  ::epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev);  // disarmed
  s.restore_client_socket();
  --parked_;
  asio::post(desc_.get_executor(), [keep = std::move(s.parked_self_)] {});
}

void ThreadSessions::arm() {
  if (armed_ || parked_ == 0 || !desc_.is_open()) return;
  armed_ = true;
  desc_.async_wait(asio::posix::stream_descriptor::wait_read, [this](boost::system::error_code ec) {
    armed_ = false;
    if (ec) return;  // shut down
    on_readable();
  });
}

void ThreadSessions::on_readable() {
  constexpr int kBatch = 64;
  std::array<epoll_event, kBatch> events;
  std::vector<std::shared_ptr<ClientSession>> woken;
  for (;;) {
    int n = ::epoll_wait(epfd_, events.data(), kBatch, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // Every ready session leaves the parked state before any is resumed.
    for (int i = 0; i < n; ++i) {
      auto* s = static_cast<ClientSession*>(events[static_cast<std::size_t>(i)].data.ptr);
      if (!s->parked_self_) continue;
      --parked_;
      woken.push_back(std::move(s->parked_self_));
    }
    for (auto& s : woken) {
      s->restore_client_socket();
      s->on_client_readable();
    }
    woken.clear();
    if (n < kBatch) break;
  }
  arm();
}

void ThreadSessions::shutdown() {
  boost::system::error_code ignored;
  desc_.close(ignored);
  std::vector<std::shared_ptr<ClientSession>> parked;
  for (ClientSession* s = head_; s; s = s->roster_next_) {
    if (s->parked_self_) parked.push_back(std::move(s->parked_self_));
  }
  parked_ = 0;
  parked.clear();  // the sessions go (each leaves the roster in its destructor)
}

}  // namespace pgshift::proxy
