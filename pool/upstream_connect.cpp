// connect_upstream: transport (DNS, TCP, TLS) then startup, all under one connect_timeout.
#include <boost/asio/ip/address.hpp>
#include <memory>
#include <string>
#include <utility>

#include "pool/upstream_detail.hpp"

namespace pgshift::pool {
namespace detail {
namespace {

struct Resolved {
  error_code ec;
  tcp::resolver::results_type results;
};

// The resolver runs getaddrinfo on a private thread and cannot be interrupted. Its result
// lands in shared state, and we wait on a timer that a timeout can cancel, so a hanging DNS
// server costs at most connect_timeout; the late answer is dropped with the state.
struct ResolveState {
  explicit ResolveState(const asio::any_io_executor& ex)
      : resolver(ex), done(ex, asio::steady_timer::time_point::max()) {}
  tcp::resolver resolver;
  asio::steady_timer done;
  std::optional<Resolved> result;
};

asio::awaitable<Resolved> resolve(const std::string& host, std::uint16_t port) {
  auto state = std::make_shared<ResolveState>(co_await asio::this_coro::executor);
  state->resolver.async_resolve(host, std::to_string(port), tcp::resolver::numeric_service,
                                [state](error_code ec, tcp::resolver::results_type results) {
                                  state->result = Resolved{ec, std::move(results)};
                                  state->done.cancel();
                                });
  co_await state->done.async_wait(use_tuple);
  if (state->result) co_return std::move(*state->result);
  state->resolver.cancel();
  co_return Resolved{asio::error::operation_aborted, {}};
}

asio::awaitable<std::unique_ptr<ServerConnection>> establish(const UpstreamParams& params,
                                                             ConnectError& error,
                                                             std::string_view& stage) {
  auto stream = co_await open_transport(params, error, stage);
  if (!stream) co_return nullptr;
  auto conn = std::make_unique<ServerConnection>(std::move(*stream));
  const bool ok = co_await run_startup(*conn, params, error, stage);
  if (!ok) {
    conn->stream.close();
    co_return nullptr;
  }
  conn->param_state.defaults = tracked_parameters(params.startup_params);
  conn->param_state.reset();
  co_return conn;
}

}  // namespace

std::string describe_endpoint(const UpstreamParams& params) {
  error_code ec;
  auto address = asio::ip::make_address(params.host, ec);
  if (!ec && address.is_v6()) return "[" + params.host + "]:" + std::to_string(params.port);
  return params.host + ":" + std::to_string(params.port);
}

void fail(ConnectError& error, error_code ec, std::string message) {
  error.ec = ec;
  error.message = std::move(message);
  error.sqlstate.clear();
  error.server_message.clear();
}

asio::awaitable<std::optional<Stream>> open_transport(const UpstreamParams& params,
                                                      ConnectError& error,
                                                      std::string_view& stage) {
  stage = "resolving the host name";
  auto resolved = co_await resolve(params.host, params.port);
  if (resolved.ec) {
    fail(error, resolved.ec,
         "could not resolve host \"" + params.host + "\": " + resolved.ec.message());
    co_return std::nullopt;
  }

  stage = "connecting";
  tcp::socket socket(co_await asio::this_coro::executor);
  error_code last = asio::error::host_not_found;
  tcp::endpoint last_endpoint;
  bool connected = false;
  for (const auto& entry : resolved.results) {
    error_code ignored;
    socket.close(ignored);
    auto [ec] = co_await socket.async_connect(entry.endpoint(), use_tuple);
    if (!ec) {
      connected = true;
      break;
    }
    last = ec;
    last_endpoint = entry.endpoint();
    if (ec == asio::error::operation_aborted) break;
  }
  if (!connected) {
    std::string message = "could not connect to " + describe_endpoint(params);
    if (last_endpoint != tcp::endpoint{}) {
      const auto address = last_endpoint.address().to_string();
      if (address != params.host) message += " (" + address + ")";
    }
    fail(error, last, message + ": " + last.message());
    co_return std::nullopt;
  }
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);  // latency over throughput; best effort

  Stream stream(std::move(socket));
  if (params.tls_mode != config::UpstreamTlsMode::disable) {
    const bool ok = co_await negotiate_tls(stream, params, error, stage);
    if (!ok) {
      stream.close();
      co_return std::nullopt;
    }
  }
  co_return std::optional<Stream>(std::move(stream));
}

}  // namespace detail

asio::awaitable<std::unique_ptr<ServerConnection>> connect_upstream(const UpstreamParams& params,
                                                                    ConnectError& error) {
  error = ConnectError{};
  if (params.tls_mode != config::UpstreamTlsMode::disable && !params.tls_context) {
    detail::fail(error, asio::error::invalid_argument,
                 "TLS is enabled for " + detail::describe_endpoint(params) +
                     " but no TLS context was given");
    co_return nullptr;
  }
  std::string_view stage = "starting";
  error_code why;
  auto conn = co_await detail::with_timeout(detail::establish(params, error, stage),
                                            params.connect_timeout, why);
  if (!conn) {
    std::string what =
        why == errc::timed_out
            ? "timed out after " + std::to_string(params.connect_timeout.count()) + " ms"
            : std::string("cancelled");
    detail::fail(error, why,
                 "connecting to " + detail::describe_endpoint(params) + " " + what + " (while " +
                     std::string(stage) + ")");
    co_return nullptr;
  }
  co_return std::move(*conn);
}

}  // namespace pgshift::pool
