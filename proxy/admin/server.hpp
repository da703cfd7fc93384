#pragma once
// The admin HTTP/1.1 server (Boost.Beast): one acceptor coroutine and one coroutine per
// connection, all on one executor (io_context 0). Requests are read with a timeout and a
// body limit, answered by handle_admin_request(), and connections are kept alive between
// requests. Bound to admin.host (loopback by default); port 0 picks a free port (tests).
//
// Slow or idle clients cannot lock others out (a liveness probe must always get through):
// at max_connections, a new connection evicts the connection that has waited longest for
// its next request (headers not yet complete, or an idle keep-alive); only when every
// connection is busy answering is the new one refused. The first request's headers must
// arrive within header_timeout.
//
// Thread-safety: start() before the executor runs; stop() from any thread.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <string>

#include "proxy/runtime/runtime.hpp"

namespace pgshift::proxy {

class AdminServer : public std::enable_shared_from_this<AdminServer> {
 public:
  struct Limits {
    std::size_t max_body = 64 * 1024;
    std::size_t max_header = 16 * 1024;
    std::chrono::milliseconds header_timeout{5000};  // first request's headers
    std::chrono::milliseconds read_timeout{10000};   // per request, headers and body
    std::chrono::milliseconds idle_timeout{60000};   // keep-alive, between requests
    int max_connections = 64;  // more evict the longest-waiting reader (see above)
  };

  AdminServer(Runtime& runtime, asio::any_io_executor executor, Limits limits);
  AdminServer(Runtime& runtime, asio::any_io_executor executor)
      : AdminServer(runtime, std::move(executor), Limits{}) {}

  // Binds and listens, then spawns the accept loop. Throws std::runtime_error naming the
  // address when it cannot bind (port in use, bad host).
  void start(const std::string& host, std::uint16_t port);
  // The bound port (the chosen one when started with port 0).
  std::uint16_t port() const { return port_; }
  // Closes the listener; open connections end after their current request.
  void stop();

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(asio::ip::tcp::socket socket);
  // Makes room for one more connection; false when every connection is busy answering.
  bool make_room();

  // A connection and whether it is waiting for (the rest of) a request. Touched only on
  // executor_, so no lock.
  struct Connection {
    asio::ip::tcp::socket* socket = nullptr;
    bool reading = false;
    std::chrono::steady_clock::time_point reading_since{};
  };

  Runtime& runtime_;
  asio::any_io_executor executor_;
  Limits limits_;
  asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::list<Connection> connections_;
  std::atomic<bool> stopping_{false};
};

}  // namespace pgshift::proxy
