// send_cancel: a fresh connection (same TLS negotiation as the upstream), CancelRequest,
// then wait for the server to close, as libpq does, so the cancel has been processed when
// we return. https://www.postgresql.org/docs/15/protocol-flow.html#id-1.10.6.9
#include <array>

#include "pool/upstream_detail.hpp"
#include "wire/builder.hpp"

namespace pgshift::pool {
namespace {

asio::awaitable<error_code> deliver_cancel(const UpstreamParams& params, wire::CancelKey key,
                                           bool& sent) {
  ConnectError error;
  std::string_view stage;
  auto stream = co_await detail::open_transport(params, error, stage);
  if (!stream) co_return error.ec;
  wire::Bytes out;
  wire::cancel_request(out, key.pid, key.secret);
  if (auto ec = co_await stream->write_all(out)) {
    stream->close();
    co_return ec;
  }
  sent = true;
  // The server answers nothing; it closes once the request is handled.
  std::array<std::uint8_t, 64> sink{};
  for (;;) {
    auto [ec, n] = co_await stream->read_some(sink);
    if (ec) break;
  }
  stream->close();
  co_return error_code{};
}

}  // namespace

asio::awaitable<error_code> send_cancel(const UpstreamParams& params, wire::CancelKey key) {
  if (params.tls_mode != config::UpstreamTlsMode::disable && !params.tls_context) {
    co_return asio::error::invalid_argument;
  }
  bool sent = false;
  error_code why;
  auto result =
      co_await detail::with_timeout(deliver_cancel(params, key, sent), params.connect_timeout, why);
  if (result) co_return *result;
  // Timed out waiting for the close: the request itself went out.
  co_return sent ? error_code{} : why;
}

}  // namespace pgshift::pool
