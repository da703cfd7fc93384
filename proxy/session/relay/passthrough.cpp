// Passthrough relay (session mode on a route without a target, and replication). Bytes are
// forwarded as they arrive; only message headers are inspected (Terminate from the client,
// ReadyForQuery from the server), so a large DataRow or CopyData is never held in full. Framing is
// validated in both directions; lost framing ends the session.
#include "proxy/session/exclusive_ddl.hpp"
#include "proxy/session/message_io.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_error.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

std::string_view ClientSession::to_string(EndReason r) {
  switch (r) {
    case EndReason::none:
      return "none";
    case EndReason::client_closed:
      return "client_closed";
    case EndReason::client_protocol_error:
      return "client_protocol_error";
    case EndReason::server_closed:
      return "server_closed";
    case EndReason::server_protocol_error:
      return "server_protocol_error";
    case EndReason::drain:
      return "drain";
    case EndReason::limit_exceeded:
      return "limit_exceeded";
  }
  return "none";
}

// The first reason wins; it decides what (if anything) the client is told.
void ClientSession::end(EndReason reason, std::string detail) {
  if (end_reason_ != EndReason::none) return;
  end_reason_ = reason;
  if (!detail.empty()) end_note().detail = std::move(detail);
  if (parked_self_) roster_->unpark(*this);  // ended while idle (drain, server gone)
  if (reason == EndReason::client_protocol_error) {
    metrics().protocol_errors(ProtocolDirection::client).Increment();
  } else if (reason == EndReason::server_protocol_error) {
    metrics().protocol_errors(ProtocolDirection::server).Increment();
  } else if (reason == EndReason::server_closed) {
    metrics().errors(ErrorKind::server_io).Increment();
  }
  if (mux_) wake_server_reader();  // it says goodbye
  if (!server_) return;
  if (reason == EndReason::client_closed && !direct_) {
    // The server may be reusable: only wake the server direction, which decides.
    boost::system::error_code ignored;
    server_->stream.socket().cancel(ignored);
  } else {
    server_->stream.close();  // wakes the server direction, which tells the client
  }
}

void ClientSession::request_drain() {
  drain_requested_ = true;
  if (tracker_.idle() && (server_ || mux_)) end(EndReason::drain);
}

void ClientSession::terminate_now() {
  drain_requested_ = true;
  end(EndReason::drain);
}

// The server direction is the only writer to the client: it says why the session ends.
asio::awaitable<void> ClientSession::say_goodbye() {
  switch (end_reason_) {
    case EndReason::client_protocol_error:
      co_await send_error(client_, "08P01", end_detail());
      break;
    case EndReason::server_closed: {
      const ClientError e = server_lost(ServerLoss::session);
      co_await send_error(client_, e.sqlstate, e.message);
      break;
    }
    case EndReason::server_protocol_error:
      co_await send_error(client_, "08P01", end_detail());
      break;
    case EndReason::drain:
      // PostgreSQL's words for SIGTERM / pg_terminate_backend, so clients that match on them
      // (reconnect logic, poolers in front) treat pgshift's shutdown the same way.
      co_await send_error(client_, "57P01", "terminating connection due to administrator command",
                          "FATAL", "pgshift is shutting down.");
      break;
    case EndReason::limit_exceeded:
      co_await send_error(client_, end_note().sqlstate, end_detail(), "FATAL",
                          "The message came inside a transaction or an unsynced batch, which "
                          "cannot go on without it; the server rolls the transaction back.");
      break;
    case EndReason::none:
    case EndReason::client_closed:
      break;
  }
  log_info("session ended",
           {f("session", id_), f("reason", to_string(end_reason_)), f("detail", end_detail())});
  client_.close();
}

asio::awaitable<void> ClientSession::client_to_server() {
  wire::MessageScanner scanner(wire::Direction::frontend, limits_,
                               wire::type_set({wire::fe::terminate}));
  IoBuffer& buf = client_buf_;  // may already hold bytes pipelined after the startup packet
  bool unread = !buf.empty();
  while (end_reason_ == EndReason::none) {
    if (!unread) {
      if (buf.empty()) {
        buf.release_if_empty();  // idle clients hold no I/O buffer
        if (co_await client_.wait_readable()) break;
        if (end_reason_ != EndReason::none) break;
      }
      auto [ec, n] = co_await client_.read_some(buf.writable());
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
        end(EndReason::client_protocol_error, "invalid frontend message: " + r.error.message());
        break;
      }
      if (r.kind == wire::ScanKind::message && r.type == wire::fe::terminate) {
        terminate = true;
        // Bytes after Terminate: a protocol violation the client is told about.
        if (forward + r.consumed < data.size()) {
          end(EndReason::client_protocol_error, "unexpected message after Terminate");
        }
        break;
      }
      if (r.kind == wire::ScanKind::message || r.first_piece) {
        tracker_.on_frontend(r.type);
        // DROP DATABASE and friends: our idle servers must not be "other users" (14.2).
        const auto body = data.subspan(forward + 5, r.consumed - 5);
        free_databases_for_message(*pools_->registry(), r.type, body, id_);
        if (leaves_lasting_state(r.type, body)) server_->no_reuse = true;  // 14.4
      }
      forward += r.consumed;
    }
    if (forward > 0) {
      if (co_await server_->stream.write_all(data.first(forward))) {
        end(EndReason::server_closed, "write to server failed");
        break;
      }
      buf.consume(forward);
    }
    if (terminate || end_reason_ != EndReason::none) break;
    if (scanner.bytes_needed() > buf.size()) buf.reserve_total(scanner.bytes_needed());
  }
  end(EndReason::client_closed);
  buf.release_if_empty();
}

asio::awaitable<void> ClientSession::server_to_client() {
  auto self = shared_from_this();
  wire::MessageScanner scanner(wire::Direction::backend, limits_,
                               wire::type_set({wire::be::ready_for_query}));
  IoBuffer buf;
  pool::Stream& server = server_->stream;
  bool server_ok = true;  // false once the server connection failed or lost framing
  while (end_reason_ == EndReason::none) {
    if (buf.empty()) {
      buf.release_if_empty();
      if (auto ec = co_await server.wait_readable()) {
        server_ok = ec == asio::error::operation_aborted && end_reason_ == EndReason::client_closed;
        break;
      }
    }
    auto [ec, n] = co_await server.read_some(buf.writable());
    if (ec) {
      server_ok = ec == asio::error::operation_aborted && end_reason_ == EndReason::client_closed;
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
        end(EndReason::server_protocol_error,
            "lost synchronization with server: " + r.error.message());
        break;
      }
      if (r.kind == wire::ScanKind::message && r.type == wire::be::ready_for_query) {
        char status = wire::txn_status::idle;
        if (wire::parse_ready_for_query(r.body, status)) {
          server_ok = false;
          end(EndReason::server_protocol_error, "malformed ReadyForQuery");
          break;
        }
        tracker_.on_ready_for_query(status);
        at_idle_boundary = tracker_.idle();
      }
      forward += r.consumed;
    }
    if (forward > 0) {
      if (co_await client_.write_all(data.first(forward))) {
        end(EndReason::client_closed, "write to client failed");
        break;
      }
      buf.consume(forward);
    }
    if (at_idle_boundary && (drain_requested_ || runtime_.draining.load())) {
      end(EndReason::drain);
      break;
    }
    if (scanner.bytes_needed() > buf.size()) buf.reserve_total(scanner.bytes_needed());
  }
  end(EndReason::server_closed, "server closed the connection");

  co_await say_goodbye();
  if (!buf.empty()) server_ok = false;  // unread server bytes: not at a clean boundary
  if (direct_) direct_->stream.close();
  co_await release_all(server_ok);
}

}  // namespace pgshift::proxy
