#include "proxy/admin/server.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <stdexcept>

#include "proxy/admin/router.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

std::string peer_of(const tcp::socket& s) {
  boost::system::error_code ec;
  const auto ep = s.remote_endpoint(ec);
  if (ec) return "unknown";
  const auto a = ep.address();
  return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(ep.port());
}

// An answer to a request we could not parse; the connection is closed after it.
AdminResponse parse_failure(const boost::system::error_code& ec, std::size_t max_body) {
  if (ec == http::error::body_limit) {
    return error_response(http::status::payload_too_large,
                          "request body larger than " + std::to_string(max_body) + " bytes");
  }
  if (ec == http::error::header_limit) {
    return error_response(http::status::request_header_fields_too_large,
                          "request headers too large");
  }
  return error_response(http::status::bad_request, "malformed HTTP request: " + ec.message());
}

}  // namespace

AdminServer::AdminServer(Runtime& runtime, asio::any_io_executor executor, Limits limits)
    : runtime_(runtime), executor_(executor), limits_(limits), acceptor_(executor) {}

void AdminServer::start(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) throw std::runtime_error("admin.host: \"" + host + "\" is not an IP address");
  const tcp::endpoint ep(address, port);
  const std::string where = host + ":" + std::to_string(port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw std::runtime_error("admin API: cannot listen on " + where + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  log_info("admin API listening", {f("host", host), f("port", port_)});
  asio::co_spawn(
      executor_, [self = shared_from_this()]() { return self->accept_loop(); }, asio::detached);
}

void AdminServer::stop() {
  stopping_.store(true);
  asio::post(executor_, [self = shared_from_this()]() {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

asio::awaitable<void> AdminServer::accept_loop() {
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
      log_warn("admin accept failed", {f("error", ec.message())});
      asio::steady_timer pause(executor_, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (connections_.load() >= limits_.max_connections) {
      log_warn("admin API: too many connections; closing a new one",
               {f("peer", peer_of(socket)), f("limit", limits_.max_connections)});
      continue;  // the socket closes on scope exit
    }
    asio::co_spawn(
        executor_,
        [self = shared_from_this(), s = std::move(socket)]() mutable {
          return self->serve(std::move(s));
        },
        asio::detached);
  }
}

asio::awaitable<void> AdminServer::serve(tcp::socket socket) {
  ++connections_;
  struct Release {
    std::atomic<int>& n;
    ~Release() { --n; }
  } release{connections_};
  const std::string peer = peer_of(socket);
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  bool first = true;
  bool unread = false;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(limits_.max_body);
    parser.header_limit(static_cast<std::uint32_t>(limits_.max_header));
    // An idle keep-alive connection may wait longer for its next request than a request
    // may take to arrive once started; one deadline per read keeps it simple and bounded.
    stream.expires_after(first ? limits_.read_timeout : limits_.idle_timeout);
    first = false;
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec == http::error::end_of_stream || ec == asio::error::eof || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset) {
      break;
    }
    AdminResponse res;
    bool keep_alive = false;
    if (ec) {
      res = parse_failure(ec, limits_.max_body);
      metrics().admin_requests("other", res.result_int()).Increment();
    } else {
      const AdminRequest& req = parser.get();
      res = co_await handle_admin_request_async(runtime_, req, peer);
      res.version(req.version());
      keep_alive = req.keep_alive() && !stopping_.load();
    }
    res.keep_alive(keep_alive);
    stream.expires_after(limits_.read_timeout);
    auto [wec, written] = co_await http::async_write(stream, res, use_tuple);
    if (wec || !keep_alive) {
      unread = !wec && ec;  // the rest of a rejected request may still be arriving
      break;
    }
  }
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  if (unread) {
    // Lingering close: closing with unread input makes the kernel send a reset, which can
    // destroy our error response before the client reads it. Discard input for a moment.
    stream.expires_after(std::chrono::seconds(1));
    std::array<char, 4096> sink;
    std::size_t total = 0;
    while (total < limits_.max_body * 16) {
      auto [rec, n] = co_await stream.async_read_some(asio::buffer(sink), use_tuple);
      if (rec) break;
      total += n;
    }
  }
  stream.close();
}

}  // namespace pgshift::proxy
