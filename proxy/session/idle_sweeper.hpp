#pragma once
// Per I/O thread: the sessions that keep read buffers between messages ("hot" sessions,
// ClientSession::hot_). Every period the list is walked and a session that did nothing
// since the last walk is asked to let its buffers go (ClientSession::sweep_idle()), so that
// busy sessions keep reads pending (no epoll re-arm per message) while idle ones hold no I/O
// memory.
// Not thread-safe: each thread has its own list, used only on that thread.
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <vector>

namespace pgshift::proxy {

namespace asio = boost::asio;
class ClientSession;

class IdleSweeper {
 public:
  // How long a hot session stays hot without activity: between one and two periods.
  static constexpr std::chrono::milliseconds kPeriod{1000};

  // The calling thread's sweeper.
  static IdleSweeper& local();
  void add(std::weak_ptr<ClientSession> session) { sessions_.push_back(std::move(session)); }
  std::size_t size() const { return sessions_.size(); }
  // One walk over the list.
  void sweep();
  // Sweeps this thread's list every kPeriod until the io_context stops (Server::run spawns
  // it on every I/O context).
  static asio::awaitable<void> run();

 private:
  std::vector<std::weak_ptr<ClientSession>> sessions_;
};

}  // namespace pgshift::proxy
