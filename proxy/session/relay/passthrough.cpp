// Passthrough relay (session mode on a route without a target, and replication). Bytes are
// forwarded as they arrive; only message headers are inspected (Terminate from the client,
// ReadyForQuery from the server), so a large DataRow or CopyData is never held in full. Framing is
// validated in both directions; lost framing ends the session.
#include "proxy/session/relay/passthrough.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "proxy/session/exclusive_ddl.hpp"
#include "proxy/session/session.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

asio::awaitable<void> PassthroughRelay::run(std::shared_ptr<ClientSession> session) {
  ClientSession& s = *session;  // (its server direction is marked running at login)
  asio::co_spawn(s.client_.get_executor(), server_to_client(std::move(session)), asio::detached);
  co_await client_to_server(s);
}

asio::awaitable<void> PassthroughRelay::client_to_server(ClientSession& s) {
  wire::MessageScanner scanner(wire::Direction::frontend, s.limits_,
                               wire::type_set({wire::fe::terminate}));
  IoBuffer& buf = s.client_buf_;  // may already hold bytes pipelined after the startup packet
  bool unread = !buf.empty();
  while (s.end_reason_ == ClientSession::EndReason::none) {
    if (!unread) {
      if (buf.empty()) {
        buf.release_if_empty();  // idle clients hold no I/O buffer
        if (co_await s.client_.wait_readable()) break;
        if (s.end_reason_ != ClientSession::EndReason::none) break;
      }
      auto [ec, n] = co_await s.client_.read_some(buf.writable());
      if (ec) break;
      buf.commit(n);
    }
    unread = false;
    auto data = buf.data();
    std::size_t forward = 0;
    bool terminate = false;
    while (forward < data.size()) {
      auto r = scanner.feed(data.subspan(forward));
      if (r.kind == wire::ScanKind::need_more) {
        break;
      }
      if (r.kind == wire::ScanKind::error) {
        s.end(ClientSession::EndReason::client_protocol_error,
              "invalid frontend message: " + r.error.message());
        break;
      }
      if (r.kind == wire::ScanKind::message && r.type == wire::fe::terminate) {
        terminate = true;
        // Bytes after Terminate: a protocol violation the client is told about.
        if (forward + r.consumed < data.size()) {
          s.end(ClientSession::EndReason::client_protocol_error,
                "unexpected message after Terminate");
        }
        break;
      }
      if (r.kind == wire::ScanKind::message || r.first_piece) {
        s.tracker_.on_frontend(r.type);
        // DROP DATABASE and friends: our idle servers must not be "other users" (14.2).
        const auto body = data.subspan(forward + 5, r.consumed - 5);
        free_databases_for_message(*s.pools_->registry(), r.type, body, s.id_);
        if (leaves_lasting_state(r.type, body)) s.server_->no_reuse = true;  // 14.4
      }
      forward += r.consumed;
    }
    if (forward > 0) {
      if (co_await s.server_->stream.write_all(data.first(forward))) {
        s.end(ClientSession::EndReason::server_closed, "write to server failed");
        break;
      }
      buf.consume(forward);
    }
    if (terminate || s.end_reason_ != ClientSession::EndReason::none) break;
    if (scanner.bytes_needed() > buf.size()) buf.reserve_total(scanner.bytes_needed());
  }
  s.end(ClientSession::EndReason::client_closed);
  buf.release_if_empty();
}

asio::awaitable<void> PassthroughRelay::server_to_client(std::shared_ptr<ClientSession> self) {
  ClientSession& s = *self;
  wire::MessageScanner scanner(wire::Direction::backend, s.limits_,
                               wire::type_set({wire::be::ready_for_query}));
  IoBuffer buf;
  pool::Stream& server = s.server_->stream;
  bool server_ok = true;  // false once the server connection failed or lost framing
  while (s.end_reason_ == ClientSession::EndReason::none) {
    if (buf.empty()) {
      buf.release_if_empty();
      if (auto ec = co_await server.wait_readable()) {
        server_ok = ec == asio::error::operation_aborted &&
                    s.end_reason_ == ClientSession::EndReason::client_closed;
        break;
      }
    }
    auto [ec, n] = co_await server.read_some(buf.writable());
    if (ec) {
      server_ok = ec == asio::error::operation_aborted &&
                  s.end_reason_ == ClientSession::EndReason::client_closed;
      break;
    }
    buf.commit(n);
    auto data = buf.data();
    std::size_t forward = 0;
    bool at_idle_boundary = false;
    while (forward < data.size()) {
      auto r = scanner.feed(data.subspan(forward));
      if (r.kind == wire::ScanKind::need_more) break;
      if (r.kind == wire::ScanKind::error) {
        server_ok = false;
        s.end(ClientSession::EndReason::server_protocol_error,
              "lost synchronization with server: " + r.error.message());
        break;
      }
      if (r.kind == wire::ScanKind::message && r.type == wire::be::ready_for_query) {
        char status = wire::txn_status::idle;
        if (wire::parse_ready_for_query(r.body, status)) {
          server_ok = false;
          s.end(ClientSession::EndReason::server_protocol_error, "malformed ReadyForQuery");
          break;
        }
        s.tracker_.on_ready_for_query(status);
        at_idle_boundary = s.tracker_.idle();
      }
      forward += r.consumed;
    }
    if (forward > 0) {
      if (co_await s.client_.write_all(data.first(forward))) {
        s.end(ClientSession::EndReason::client_closed, "write to client failed");
        break;
      }
      buf.consume(forward);
    }
    if (at_idle_boundary && (s.drain_requested_ || s.runtime_.draining.load())) {
      s.end(ClientSession::EndReason::drain);
      break;
    }
    if (scanner.bytes_needed() > buf.size()) buf.reserve_total(scanner.bytes_needed());
  }
  s.end(ClientSession::EndReason::server_closed, "server closed the connection");

  co_await s.say_goodbye();
  if (!buf.empty()) server_ok = false;  // unread server bytes: not at a clean boundary
  if (s.direct_) s.direct_->stream.close();
  co_await s.release_all(server_ok);
}

}  // namespace pgshift::proxy
