// Multiplexed relay, server to client: reads the active server, drops the answers to
// messages the proxy injected (prepared statements), sees each ReadyForQuery, and in
// transaction mode gives the server back at the transaction boundary, before the client
// can send its next transaction. It is the only writer to the client: the proxy's own
// answers (local_out_) go through it, in order.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <utility>

#include "proxy/control/state_store.hpp"
#include "proxy/session/relay/fence.hpp"
#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/messages.hpp"
#include "wire/scanner.hpp"

namespace pgshift::proxy {

namespace {
std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void ClientSession::count_transaction() {
  if (txn_counted_) return;
  if (!open_counter_) open_counter_ = runtime_.pause->counter(route_name_);
  // seq_cst, then the gate's flag is read: see pause_gate.hpp.
  open_counter_->open.fetch_add(1, std::memory_order_seq_cst);
  txn_counted_ = true;
}

void ClientSession::uncount_transaction() {
  if (!txn_counted_) return;
  open_counter_->open.fetch_sub(1, std::memory_order_relaxed);
  txn_counted_ = false;
}

void ClientSession::on_transaction_end() {
  uncount_transaction();
  if (txn_wrote_ && route_->ryw && !rs().txn_key.empty()) {
    route_->ryw->record_write(rs().txn_key, {steady_ms(), 0});
  }
  txn_wrote_ = false;
  if (keys_) keys_->end_transaction();
}

// The active server failed or is going away. If it holds no session state (transaction
// mode, or in session mode a non-authoritative server, which only ever runs split reads),
// the client only loses the work in flight on it: it gets an error (and ReadyForQuery for
// each answer it still waits for), and its next transaction gets another server. A session
// with state on its server (session mode's authoritative server, or pinned) cannot
// continue: it ends. Returns false when it ends.
asio::awaitable<bool> ClientSession::on_server_failure(std::string detail) {
  if (server_holds_state() || end_reason_ != EndReason::none) {
    end(EndReason::server_closed, std::move(detail));
    co_return false;
  }
  metrics().errors(ErrorKind::server_io).Increment();
  const std::uint32_t outstanding = tracker_.outstanding();
  const bool unsynced = tracker_.unsynced();
  const bool in_transaction = tracker_.in_transaction();
  log_warn("server connection lost; the client's transaction fails, the client stays",
           {f("session", id_), f("route", route_name_), f("detail", detail),
            f("outstanding", outstanding), f("in_transaction", in_transaction)});
  co_await dispose_active();  // also forgets what was outstanding
  if (rs_) {
    rs_->rerun.clear();
    rs_->rerun.stop_dropping();
  }
  fence_retry_ = fence_rollback_ = false;
  if (std::exchange(retrying_, false)) notify_handoff();
  mirror_abandon();  // whether it committed is not known (docs/sync.md)
  uncount_transaction();
  txn_wrote_ = false;
  if (keys_) keys_->end_transaction();
  if (outstanding > 0) {
    reply_error("08006", "the server connection was lost; the query was not completed",
                "pgshift lost its connection to the upstream server while the query ran. Any "
                "open transaction was rolled back. The connection is usable for a new "
                "transaction.");
    wire::Bytes z;
    for (std::uint32_t i = 0; i < outstanding; ++i) wire::ready_for_query(z, 'I');
    queue_local(z);
  } else if (unsynced || in_transaction) {
    lost_transaction_ = true;  // told at the client's next message
  }
  co_return true;
}

asio::awaitable<void> ClientSession::mux_server_to_client() {
  auto self = shared_from_this();
  // CommandComplete is looked at only on a route with a target: a mirrored route's replay
  // compares its tags, and a stale sidecar's re-run needs to know what the transaction ran
  // (RerunLog).
  auto scanner_types = wire::type_set({'Z', '1', '3', 'E', 'S'});
  if (route_->route->target) scanner_types.set('C');
  wire::MessageScanner scanner(wire::Direction::backend, limits_, scanner_types);
  IoBuffer buf;
  wire::Bytes kept;  // the chunk without dropped messages, when there are any
  std::uint64_t gen = server_gen_;
  bool unscanned = false;  // buf holds bytes the idle wait read and the scan has not seen
  bool server_ok = true;   // false once the server lost framing
  bool piece_keep = true;  // whether the client gets the message being relayed in pieces
  bool more = false;       // the last read filled its buffer (Stream::read_some_drained)
  for (;;) {
    if (!local_out_.empty()) {
      wire::Bytes out;
      out.swap(local_out_);
      if (co_await client_.write_all(out)) end(EndReason::client_closed, "write to client failed");
      continue;
    }
    if (end_reason_ != EndReason::none) break;
    if (!server_) {
      // Nothing to read or write: stop. wake_server_reader() starts this again.
      s2c_holds_bytes_ = false;
      notify_handoff();
      s2c_running_ = false;
      co_return;
    }
    if (gen != server_gen_) {
      // Another server is active; nothing of the old one is held (see start_transaction).
      buf.consume(buf.size());
      unscanned = false;
      scanner = wire::MessageScanner(wire::Direction::backend, limits_, scanner_types);
      gen = server_gen_;
      more = false;
    }
    pool::ServerConnection* s = server_;
    if (buf.empty()) {
      // Idle: wait for the server's next bytes. A hot session (session_idle.cpp) waits in a
      // read that takes them as they come; an idle one waits for readiness without holding a
      // buffer (which re-arms the socket in epoll). Another direction may interrupt the wait
      // (wake_server_reader, release_active, sweep_idle) by cancelling it, which takes no
      // bytes.
      s2c_holds_bytes_ = false;
      notify_handoff();  // a client direction waiting for us to let go may go on
      wake_ = false;
      s2c_idle_wait_ = true;
      pool::error_code ec;
      std::size_t n = 0;
      if (hot_) {
        more = more || !scanner.at_boundary();  // inside a message: read at once
        auto [rec, rn] = co_await s->stream.read_some_drained(buf.writable(), more);
        ec = rec;
        n = rn;
      } else {
        buf.release_if_empty();
        ec = co_await s->stream.wait_readable();
      }
      s2c_idle_wait_ = false;
      if (end_reason_ != EndReason::none) {
        // Bytes from a server the session no longer reads: not at a clean boundary.
        server_ok = (!ec && n == 0) || ec == asio::error::operation_aborted;
        break;
      }
      if (gen != server_gen_) {
        // The server was given back while the read was completing: what it said while idle
        // (a notice, or a FATAL before it goes away) belongs to nobody. The pool's idle
        // watch and liveness probe catch a server that went away (docs/pooling.md).
        continue;
      }
      if (ec == asio::error::operation_aborted && wake_) continue;
      if (ec) {
        if (!co_await on_server_failure("server connection failed: " + ec.message())) break;
        continue;
      }
      if (n > 0) {
        buf.commit(n);
        s2c_holds_bytes_ = true;
        unscanned = true;
      }
      if (!local_out_.empty()) continue;  // the proxy's answers were queued first
    }
    if (!unscanned) {
      s2c_holds_bytes_ = true;
      // Part of a message is held: read at once (a server that stopped mid-message and
      // closed is seen now, Stream::read_some_drained).
      more = true;
      auto [ec, n] = co_await s->stream.read_some_drained(buf.writable(), more);
      if (end_reason_ != EndReason::none && (ec || gen != server_gen_)) {
        server_ok = false;
        break;
      }
      if (ec) {
        buf.consume(buf.size());
        if (!co_await on_server_failure("server closed the connection")) break;
        continue;
      }
      buf.commit(n);
    }
    unscanned = false;
    auto data = buf.data();
    std::size_t pos = 0;
    bool dropped = false, fatal = false;
    bool rerun_due = false;  // the fenced statement's ReadyForQuery came: re-run it
    kept.clear();
    while (pos < data.size()) {
      auto r = scanner.feed(data.subspan(pos));
      if (r.kind == wire::ScanKind::need_more) break;
      if (r.kind == wire::ScanKind::error) {
        server_ok = false;
        end(EndReason::server_protocol_error,
            "lost synchronization with server: " + r.error.message());
        break;
      }
      bool keep = true;
      if (r.kind == wire::ScanKind::message) {
        if (r.type == 'Z') {
          char status = 'I';
          if (wire::parse_ready_for_query(r.body, status)) {
            server_ok = false;
            end(EndReason::server_protocol_error, "malformed ReadyForQuery");
            break;
          }
          tracker_.on_ready_for_query(status);
          s->txn_status = status;
          rs().filter.should_forward('Z', s->prepared);
          // After a fence error the client gets the re-run's answers (fence_retry.cpp).
          if (fence_retry_) rerun_due = tracker_.outstanding() == 0;
          if (tracker_.outstanding() == 0) {
            route_metrics_->latency(active_side_)
                .Observe(seconds(std::chrono::steady_clock::now() - query_start_));
          }
          if (mirror_txn_) {
            if (fence_retry_) {
              mirror_->clear();  // re-run on the new side: not this side's transaction
              mirror_txn_ = false;
            } else {
              mirror_ready(status);
            }
          }
          if (mirror_settings_) mirror_settings_->on_ready_for_query(status);
          if (status == 'I') on_transaction_end();
        } else if (r.type == 'E') {
          wire::ErrorFields ef;
          const bool parsed = !wire::parse_error_fields(r.body, ef);
          if (parsed && is_fence_error(ef)) {
            // A stale sidecar met the fence (fence_retry.cpp): re-run when the transaction
            // ran nothing but harmless statements, else one retryable error instead.
            rs().filter.should_forward(r.type, s->prepared);  // its bookkeeping only
            keep = false;
            if (runtime_.states) runtime_.states->refresh_soon();
            if (fence_rerunnable()) {
              fence_retry_ = true;
              retrying_ = true;  // the client direction sends nothing more meanwhile
            } else {
              rs().rerun.clear();
              rs().rerun.stop_dropping();
              if (!dropped)
                kept.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(pos));
              dropped = true;
              wire::error_response(kept, {.severity = "ERROR",
                                          .sqlstate = "40001",
                                          .message = fence_moved_error(ef, route_name_),
                                          .detail = ef.message()});
              log_info("fence met inside a transaction: retryable error for the client",
                       {f("session", id_), f("route", route_name_)});
            }
          } else if (parsed && !server_holds_state() &&
                     (ef.severity() == "FATAL" || ef.severity() == "PANIC")) {
            // The server is going away (restart, admin shutdown): when it holds no session
            // state the client keeps its connection and gets an ERROR instead
            // (on_server_failure).
            fatal = true;
            keep = false;
            log_info("server ends the connection",
                     {f("session", id_), f("sqlstate", ef.sqlstate()), f("message", ef.message())});
          } else {
            keep = rs().filter.should_forward(r.type, s->prepared);
            if (mirror_txn_) mirror_backend(r.type, r.body);
            if (mirror_settings_) mirror_settings_answer(r.type, r.body);
          }
        } else if (r.type != 'Z') {
          if (r.type == 'C' && mirror_txn_) mirror_backend(r.type, r.body);
          // ParameterStatus: the client changed a reported setting; the next client of this
          // server gets its own values set again (pool/server_params.hpp).
          if (r.type == 'S') s->param_state.unknown = true;
          if (mirror_settings_) mirror_settings_answer(r.type, r.body);
          keep = rs().filter.should_forward(r.type, s->prepared);
        }
        keep = rerun_track(r.type, r.body, keep);
      } else if (r.kind == wire::ScanKind::skip) {
        if (r.first_piece) piece_keep = rerun_track(r.type, {}, true);
        keep = piece_keep;
      }
      if (!keep) {
        if (!dropped) kept.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(pos));
        dropped = true;
      } else if (dropped) {
        kept.insert(kept.end(), data.begin() + static_cast<std::ptrdiff_t>(pos),
                    data.begin() + static_cast<std::ptrdiff_t>(pos + r.consumed));
      }
      pos += r.consumed;
      if (fatal) break;
    }
    if (end_reason_ != EndReason::none) break;
    std::span<const std::uint8_t> out =
        dropped ? std::span<const std::uint8_t>(kept) : data.first(pos);
    buf.consume(pos);
    if (fatal) {
      buf.consume(buf.size());
      if (!out.empty() && co_await client_.write_all(out)) {
        end(EndReason::client_closed, "write to client failed");
        break;
      }
      if (!co_await on_server_failure("the server ended the connection")) break;
      continue;
    }
    // Transaction mode: the server goes back to the pool at the boundary, before the client
    // sees the ReadyForQuery and can start its next transaction.
    const bool boundary = tracker_.idle() && buf.empty();
    if (boundary) {
      s2c_holds_bytes_ = false;
      if (!c2s_writing_ && filter_empty()) release_active();
    }
    if (mirror_acks_ && mirror_acks_->pending > 0 && boundary) co_await wait_mirror_acks();
    if (!out.empty() && co_await client_.write_all(out)) {
      end(EndReason::client_closed, "write to client failed");
      break;
    }
    if (boundary && (drain_requested_ || runtime_.draining.load())) {
      end(EndReason::drain);
      break;
    }
    if (rerun_due) {
      if (!co_await retry_after_fence()) break;
      continue;
    }
    if (scanner.bytes_needed() > buf.size()) buf.reserve_total(scanner.bytes_needed());
  }
  if (end_reason_ == EndReason::none) end(EndReason::server_closed, "server closed the connection");
  // A client direction held for a fence re-run that will not happen now sees the end.
  if (std::exchange(retrying_, false)) notify_handoff();
  mirror_abandon();
  // Anything still queued (an error for the client) goes out before the goodbye.
  if (!local_out_.empty() && end_reason_ != EndReason::client_closed) {
    co_await client_.write_all(local_out_);
  }
  co_await say_goodbye();
  if (!buf.empty()) server_ok = false;  // unread server bytes: not at a clean boundary
  co_await release_all(server_ok);
}

}  // namespace pgshift::proxy
