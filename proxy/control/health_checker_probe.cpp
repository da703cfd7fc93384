// The two health probes of HealthChecker: a full login, or a bare TCP connect.
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "pool/upstream.hpp"
#include "proxy/control/health_checker.hpp"

namespace pgshift::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
using tcp = asio::ip::tcp;

// getaddrinfo runs on Asio's private thread and cannot be interrupted, so the answer lands
// in shared state and we wait on a timer instead: a hanging DNS server costs at most the
// timeout, and a late answer is dropped with the state.
struct ResolveState {
  explicit ResolveState(const asio::any_io_executor& ex) : resolver(ex), done(ex) {}
  tcp::resolver resolver;
  asio::steady_timer done;
  std::optional<std::pair<boost::system::error_code, tcp::resolver::results_type>> result;
};

}  // namespace

asio::awaitable<std::string> probe_login(const pool::UpstreamParams& params) {
  pool::ConnectError error;
  auto conn = co_await pool::connect_upstream(params, error);
  if (!conn) {
    if (error.from_server()) co_return error.server_message + " (SQLSTATE " + error.sqlstate + ")";
    std::string why = error.message.empty() ? error.ec.message() : error.message;
    co_return why;
  }
  // Terminate ('X', length 4): a clean goodbye, so the server does not log an unexpected EOF.
  static constexpr std::array<std::uint8_t, 5> kTerminate = {'X', 0, 0, 0, 4};
  co_await conn->stream.write_all(kTerminate);
  conn->stream.close();
  co_return std::string();
}

asio::awaitable<std::string> probe_tcp(const std::string& host, std::uint16_t port,
                                       std::chrono::milliseconds timeout) {
  using namespace asio::experimental::awaitable_operators;
  auto ex = co_await asio::this_coro::executor;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto state = std::make_shared<ResolveState>(ex);
  state->done.expires_at(deadline);
  state->resolver.async_resolve(
      host, std::to_string(port), tcp::resolver::numeric_service,
      [state](boost::system::error_code ec, tcp::resolver::results_type r) {
        state->result.emplace(ec, std::move(r));
        state->done.cancel();
      });
  co_await state->done.async_wait(use_tuple);
  if (!state->result) {
    state->resolver.cancel();
    co_return "timed out resolving \"" + host + "\"";
  }
  if (state->result->first) {
    co_return "could not resolve host \"" + host + "\": " + state->result->first.message();
  }
  tcp::socket socket(ex);
  asio::steady_timer timer(ex, deadline);
  auto result = co_await (asio::async_connect(socket, state->result->second, use_tuple) ||
                          timer.async_wait(use_tuple));
  if (result.index() == 1) co_return "timed out connecting to " + host + ":" + std::to_string(port);
  auto [ec, endpoint] = std::get<0>(result);
  if (ec)
    co_return "could not connect to " + host + ":" + std::to_string(port) + ": " + ec.message();
  boost::system::error_code ignored;
  socket.close(ignored);
  co_return std::string();
}

}  // namespace pgshift::proxy
