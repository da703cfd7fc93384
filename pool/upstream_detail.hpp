#pragma once
// Private to pool/: the steps shared by connect_upstream and send_cancel. Each step fills
// ConnectError on failure and has no timeout of its own: callers run the whole sequence
// under with_timeout(), which cancels whatever step is pending when the time is up.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "pool/errc.hpp"
#include "pool/upstream.hpp"

namespace pgshift::pool::detail {

inline constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// "250 ms": durations in messages for clients and logs.
inline std::string describe_ms(std::chrono::milliseconds ms) {
  return std::to_string(ms.count()) + " ms";
}

// "host:port", or "[v6]:port".
std::string describe_endpoint(const UpstreamParams& params);

// Sets ec and message, clearing server fields from an earlier step.
void fail(ConnectError& error, error_code ec, std::string message);

// Resolves params.host (fresh on every call), connects to each address in turn, sets
// TCP_NODELAY, then negotiates TLS unless tls_mode is disable. `stage` names the step in
// progress, for timeout messages.
asio::awaitable<std::optional<Stream>> open_transport(const UpstreamParams& params,
                                                      ConnectError& error, std::string_view& stage);

// SSLRequest, exactly one answer byte (nothing more is read before the handshake:
// CVE-2021-23222), then the TLS handshake with SNI and, for verify-full, the host check.
asio::awaitable<bool> negotiate_tls(Stream& stream, const UpstreamParams& params,
                                    ConnectError& error, std::string_view& stage);

// StartupMessage, authentication, then ParameterStatus / BackendKeyData up to the first
// ReadyForQuery.
asio::awaitable<bool> run_startup(ServerConnection& conn, const UpstreamParams& params,
                                  ConnectError& error, std::string_view& stage);

// Runs `op` for at most `timeout`. Returns its result, or nullopt with `why` set to
// errc::timed_out (or operation_aborted if the caller cancelled us). `op` is cancelled and
// has finished when this returns, so it may reference the caller's locals. Never throws.
template <class T>
asio::awaitable<std::optional<T>> with_timeout(asio::awaitable<T> op,
                                               std::chrono::milliseconds timeout, error_code& why) {
  using namespace asio::experimental::awaitable_operators;
  try {
    asio::steady_timer timer(co_await asio::this_coro::executor, timeout);
    auto result = co_await (std::move(op) || timer.async_wait(use_tuple));
    if (result.index() == 0) co_return std::move(std::get<0>(result));
    auto [ec] = std::get<1>(result);
    why = ec == asio::error::operation_aborted ? error_code(asio::error::operation_aborted)
                                               : make_error_code(errc::timed_out);
  } catch (...) {
    // Only reached on cancellation (an await after the cancellation signal throws).
    why = asio::error::operation_aborted;
  }
  co_return std::nullopt;
}

}  // namespace pgshift::pool::detail
