#pragma once
// Per io_context (one I/O thread): the client sessions that live on it, and the idle ones
// parked on its one shared readiness wait.
//
// - The roster is an intrusive list through the sessions (no allocation per session). The
//   shutdown drain walks it on the thread itself (for_each), so no session is touched, nor
//   kept alive, from another thread.
// - Parking (docs/architecture.md, "Hot and idle sessions"): an idle client waits for its
//   next bytes with no Asio operation of its own. Its socket goes into this thread's epoll
//   set (EPOLLONESHOT); that set's descriptor is the only thing Asio waits on. When a parked
//   client becomes readable (bytes, EOF or an error), the session is handed back
//   (ClientSession::on_client_readable). A parked session holds a reference to itself
//   (parked_self_), dropped when it is woken or unparked.
//
// An Asio service of the io_context (asio::use_service), so it lives exactly as long as the
// context: shutdown() drops the parked sessions. Not thread-safe: used only on the
// context's own thread.
#include <boost/asio/execution_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <cstddef>
#include <functional>
#include <memory>

namespace pgshift::proxy {

namespace asio = boost::asio;
class ClientSession;

class ThreadSessions : public asio::execution_context::service {
 public:
  using key_type = ThreadSessions;
  static inline asio::execution_context::id id;  // NOLINT: Asio's service identity

  explicit ThreadSessions(asio::execution_context& ctx);
  ~ThreadSessions() override;
  // The service of the executor's context (created on first use).
  static ThreadSessions& of(const asio::any_io_executor& ex);

  // Roster: add when the session starts running on this thread, remove in its destructor.
  void add(ClientSession& s);
  void remove(ClientSession& s);
  // Calls fn for every live session of this thread (each kept alive for the call).
  void for_each(const std::function<void(ClientSession&)>& fn);
  std::size_t size() const { return size_; }

  // Parks the session's client socket until it is readable; false (nothing changed) when
  // the socket cannot be watched this way (the caller then waits with Asio as before).
  bool park(ClientSession& s);
  // Takes a parked session out (it ended while parked). Its self-reference is released
  // later, from the executor, never inside the caller's frame.
  void unpark(ClientSession& s);
  std::size_t parked() const { return parked_; }

 private:
  void shutdown() override;
  void arm();          // the shared readiness wait, if any session is parked
  void on_readable();  // collects the ready sessions and hands them back
  int epfd_ = -1;
  asio::posix::stream_descriptor desc_;  // epfd_, registered with the io_context
  bool armed_ = false;
  ClientSession* head_ = nullptr;
  std::size_t size_ = 0, parked_ = 0;
};

}  // namespace pgshift::proxy
