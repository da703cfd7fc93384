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
#include "proxy/session/clock.hpp"
#include "proxy/session/relay/fence.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_error.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/messages.hpp"
#include "wire/scanner.hpp"

namespace pgshift::proxy {

void ClientSession::count_transaction() {
  if (txn_counted_) return;
  if (!open_counter_) open_counter_ = runtime_.pause->counter(route_name());
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
    route_->ryw->record_write(rs().txn_key, {clock_ms(), 0});
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
           {f("session", id_), f("route", route_name()), f("detail", detail),
            f("outstanding", outstanding), f("in_transaction", in_transaction)});
  co_await dispose_active();  // also forgets what was outstanding
  if (rs_) {
    rs_->rerun.clear();
    rs_->rerun.stop_dropping();
  }
  if (fence_ != Fence::none) {
    fence_to(Fence::none);
    notify_handoff();  // the client direction, held for the re-run, goes on
  }
  mirror_abandon();  // whether it committed is not known (docs/sync.md)
  uncount_transaction();
  txn_wrote_ = false;
  if (keys_) keys_->end_transaction();
  if (outstanding > 0) {
    const ClientError e = server_lost(ServerLoss::query);
    reply_error(e.sqlstate, e.message, e.detail);
    wire::Bytes z;
    for (std::uint32_t i = 0; i < outstanding; ++i)
      wire::ready_for_query(z, wire::txn_status::idle);
    queue_local(z);
  } else if (unsynced || in_transaction) {
    lost_transaction_ = true;  // told at the client's next message
  }
  co_return true;
}

asio::awaitable<void> ClientSession::mux_server_to_client() {
  auto self = shared_from_this();
  S2cLoop l(limits_, server_gen_, route_->route->target.has_value());
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
      s2c_to(S2c::stopped);
      notify_handoff();
      co_return;
    }
    // Another server is active; nothing of the old one is held (see start_transaction).
    if (l.gen != server_gen_) l.restart(limits_, server_gen_);
    const Step read = co_await read_server(l, server_);
    if (read == Step::stop) break;
    if (read == Step::again) continue;
    const Scanned sc = scan_server_bytes(l, server_);
    if (end_reason_ != EndReason::none) break;
    if (co_await deliver_server_bytes(l, sc) == Step::stop) break;
  }
  if (end_reason_ == EndReason::none) end(EndReason::server_closed, "server closed the connection");
  s2c_to(S2c::done);  // never started again
  // A client direction held for a fence re-run that will not happen now sees the end.
  if (fence_ != Fence::none) {
    fence_to(Fence::none);
    notify_handoff();
  }
  mirror_abandon();
  // Anything still queued (an error for the client) goes out before the goodbye.
  if (!local_out_.empty() && end_reason_ != EndReason::client_closed) {
    co_await client_.write_all(local_out_);
  }
  co_await say_goodbye();
  if (!l.buf.empty()) l.server_ok = false;  // unread server bytes: not at a clean boundary
  co_await release_all(l.server_ok);
}

// Waits for the server's next bytes when none are held, else reads more of the message
// under way. `go`: l.buf holds bytes to scan.
asio::awaitable<ClientSession::Step> ClientSession::read_server(S2cLoop& l,
                                                                pool::ServerConnection* s) {
  if (l.buf.empty()) {
    // Idle: wait for the server's next bytes. A hot session (idle.cpp) waits in a read that
    // takes them as they come; an idle one waits for readiness without holding a buffer
    // (which re-arms the socket in epoll). Another direction may interrupt the wait
    // (wake_server_reader, release_active, sweep_idle) by cancelling it, which takes no
    // bytes.
    s2c_to(S2c::idle_wait);
    notify_handoff();  // a client direction waiting for us to let go may go on
    pool::error_code ec;
    std::size_t n = 0;
    if (hot_) {
      l.more = l.more || !l.scanner.at_boundary();  // inside a message: read at once
      auto [rec, rn] = co_await s->stream.read_some_drained(l.buf.writable(), l.more);
      ec = rec;
      n = rn;
    } else {
      l.buf.release_if_empty();
      ec = co_await s->stream.wait_readable();
    }
    const bool woken = s2c_ == S2c::waking;  // wake_server_reader() or sweep_idle()
    s2c_to(S2c::running);
    if (end_reason_ != EndReason::none) {
      // Bytes from a server the session no longer reads: not at a clean boundary.
      l.server_ok = (!ec && n == 0) || ec == asio::error::operation_aborted;
      co_return Step::stop;
    }
    // The server was given back while the read was completing: what it said while idle (a
    // notice, or a FATAL before it goes away) belongs to nobody. The pool's idle watch and
    // liveness probe catch a server that went away (docs/pooling.md).
    if (l.gen != server_gen_) co_return Step::again;
    if (ec == asio::error::operation_aborted && woken) co_return Step::again;
    if (ec) {
      const bool stays = co_await on_server_failure("server connection failed: " + ec.message());
      co_return stays ? Step::again : Step::stop;
    }
    if (n > 0) {
      l.buf.commit(n);
      s2c_to(S2c::holding);
      l.unscanned = true;
    }
    if (!local_out_.empty()) co_return Step::again;  // the proxy's answers were queued first
  }
  if (!std::exchange(l.unscanned, false)) {
    s2c_to(S2c::holding);
    // Part of a message is held: read at once (a server that stopped mid-message and closed
    // is seen now, Stream::read_some_drained).
    l.more = true;
    auto [ec, n] = co_await s->stream.read_some_drained(l.buf.writable(), l.more);
    if (end_reason_ != EndReason::none && (ec || l.gen != server_gen_)) {
      l.server_ok = false;
      co_return Step::stop;
    }
    if (ec) {
      l.buf.consume(l.buf.size());
      const bool stays = co_await on_server_failure("server closed the connection");
      co_return stays ? Step::again : Step::stop;
    }
    l.buf.commit(n);
  }
  co_return Step::go;
}

// Writes what the scan kept to the client. In transaction mode the server goes back to the
// pool at the boundary, before the client sees the ReadyForQuery and can start its next
// transaction.
asio::awaitable<ClientSession::Step> ClientSession::deliver_server_bytes(S2cLoop& l,
                                                                         const Scanned& sc) {
  const std::span<const std::uint8_t> out =
      sc.dropped ? std::span<const std::uint8_t>(l.kept) : l.buf.data().first(sc.pos);
  l.buf.consume(sc.pos);  // (the bytes stay where they are until the next read)
  if (sc.fatal) {
    l.buf.consume(l.buf.size());
    if (!out.empty() && co_await client_.write_all(out)) {
      end(EndReason::client_closed, "write to client failed");
      co_return Step::stop;
    }
    const bool stays = co_await on_server_failure("the server ended the connection");
    co_return stays ? Step::again : Step::stop;
  }
  const bool boundary = tracker_.idle() && l.buf.empty();
  if (boundary) {
    s2c_to(S2c::running);
    if (!writing_to_server_ && filter_empty()) release_active();
  }
  if (mirror_acks_ && mirror_acks_->pending > 0 && boundary) co_await wait_mirror_acks();
  if (!out.empty() && co_await client_.write_all(out)) {
    end(EndReason::client_closed, "write to client failed");
    co_return Step::stop;
  }
  if (boundary && (drain_requested_ || runtime_.draining.load())) {
    end(EndReason::drain);
    co_return Step::stop;
  }
  if (sc.rerun_due) co_return co_await retry_after_fence() ? Step::again : Step::stop;
  const std::size_t needed = l.scanner.bytes_needed();
  if (needed > l.buf.size()) l.buf.reserve_total(needed);
  co_return Step::go;
}

}  // namespace pgshift::proxy
