// How a session ends, for both relays (passthrough and multiplexed): the first reason
// recorded wins and decides what the client is told; the server direction, the only writer
// to the client, says it (say_goodbye) and gives the servers back (release_all, servers.cpp).
#include "proxy/session/message_io.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_error.hpp"
#include "proxy/telemetry/log.hpp"

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
  wake_server_reader();  // the multiplexed relay's server direction says goodbye
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

}  // namespace pgshift::proxy
