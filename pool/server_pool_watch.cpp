// The idle watch (docs/pooling.md, "Health checks"): while a plain-TCP connection waits in the
// idle list, a one-byte MSG_PEEK read is pending on it. An idle server sends nothing, so the
// read completes only when the server goes away (the FATAL of pg_terminate_backend or of a
// shutdown, a FIN, a reset) or falls out of step; the connection is then dropped at once,
// and the hand-out needs no probe. Queuing the read and cancelling it at the hand-out make
// no system call when the socket's last read drained it (the relays' reads, Stream::
// read_some_drained); after other reads Asio tries the peek once first, which returns EAGAIN.
#include <boost/asio/buffer.hpp>

#include "pool/server_pool.hpp"

namespace pgshift::pool {
namespace {

// Where the peeked byte goes: never read. One per thread, as a watch runs on its pool's
// thread.
thread_local std::uint8_t t_peeked = 0;

}  // namespace

void ServerPool::watch(ServerConnection& conn) {
  if (conn.stream.is_tls()) return;  // probed at the hand-out instead (bytes OpenSSL holds)
  const std::uint32_t generation = ++conn.idle_watch;
  conn.stream.socket().async_receive(
      asio::buffer(&t_peeked, 1), tcp::socket::message_peek,
      [weak = weak_from_this(), key = &conn, generation](const error_code& ec, std::size_t) {
        if (ec == asio::error::operation_aborted) return;  // unwatched: handed out or closed
        if (auto self = weak.lock()) self->on_idle_readable(key, generation);
      });
}

void ServerPool::unwatch(ServerConnection& conn) noexcept {
  ++conn.idle_watch;  // a completion already on its way is stale
  if (conn.stream.is_tls()) return;
  error_code ignored;
  conn.stream.socket().cancel(ignored);
}

// `conn` may be gone (then it is in no idle entry): compared, never dereferenced, until found.
void ServerPool::on_idle_readable(const ServerConnection* conn, std::uint32_t generation) {
  for (auto it = idle_.begin(); it != idle_.end(); ++it) {
    if (it->conn.get() != conn) continue;
    if (conn->idle_watch != generation) return;
    auto dead = std::move(it->conn);
    idle_.erase(it);
    gauges_.idle.add(-1);
    counters_.dead.add(1);
    retire(std::move(dead), false);
    return;
  }
}

}  // namespace pgshift::pool
