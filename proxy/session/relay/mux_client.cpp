// Multiplexed relay, client to server: every client message is handled whole (CopyData is
// forwarded in pieces). At a transaction boundary the next transaction is routed before any
// of it is sent: a Query at once, an extended-protocol batch (Parse/Bind/Describe/Close,
// held meanwhile) at its first Execute or Sync (docs/routing.md).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <optional>
#include <utility>

#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/session/clock.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_error.hpp"
#include "proxy/telemetry/log.hpp"
#include "routing/split.hpp"
#include "wire/byte_order.hpp"
#include "wire/messages.hpp"
#include "wire/scanner.hpp"

namespace pgshift::proxy {

using routing::Side;
using routing::StatementClass;

namespace {

// Bytes buffered for the server before they are written even in the middle of a read.
constexpr std::size_t kFlushThreshold = 64 * 1024;

SplitDecision split_decision(routing::Reason r) {
  switch (r) {
    case routing::Reason::split_target:
      return SplitDecision::target;
    case routing::Reason::split_source:
      return SplitDecision::source;
    case routing::Reason::ryw_hold:
      return SplitDecision::ryw_hold;
    case routing::Reason::target_unhealthy_fallback:
    case routing::Reason::source_unhealthy_fallback:
    case routing::Reason::target_lagging:
      return SplitDecision::fallback;
    default:
      return SplitDecision::authoritative;
  }
}

// The next whole message (type, length, body) in `held`, which holds only whole messages
// copied from the client; advances `pos`.
bool next_held(const wire::Bytes& held, std::size_t& pos, std::span<const std::uint8_t>& raw) {
  if (pos + 5 > held.size()) return false;
  const std::uint32_t len = wire::read_be32(held.data() + pos + 1);
  raw = std::span<const std::uint8_t>(held.data() + pos, 1 + std::size_t{len});
  pos += raw.size();
  return true;
}

}  // namespace

// The transaction that `trigger` started cannot start: the client gets the error, and
// ReadyForQuery unless the extended protocol needs a Sync first.
void ClientSession::refuse_transaction(std::uint8_t trigger, std::string_view sqlstate,
                                       std::string_view message, std::string_view detail) {
  reply_error(sqlstate, message, detail);
  clear_pending();
  if (trigger == wire::fe::query || trigger == wire::fe::sync ||
      trigger == wire::fe::function_call) {
    wire::Bytes z;
    wire::ready_for_query(z, wire::txn_status::idle);
    queue_local(z);
  } else {
    skip_until_sync_ = true;
  }
}

// The route is held (pause gate): waits until it is not, counted as open only when it goes
// on (the barrier's protocol, pause_gate.hpp). False when the client was answered instead.
asio::awaitable<bool> ClientSession::wait_while_paused(std::uint8_t trigger) {
  uncount_transaction();  // a held transaction is not open: the barrier must not wait for it
  auto wait = route_->route->pool.query_wait_timeout;
  auto deadline = wait.count() > 0 ? PauseGate::Clock::now() + wait
                                   : PauseGate::Clock::now() + PauseGate::kMaxTimeout;
  for (;;) {
    auto r =
        co_await runtime_.pause->wait_if_paused(client_.get_executor(), deadline, route_name());
    if (end_reason_ != EndReason::none) co_return false;
    if (r == PauseGate::WaitResult::deadline) {
      refuse_transaction(
          trigger, "57014",
          "canceling statement: pgshift is paused and the pause outlasted query_wait_timeout",
          "An operator paused new transactions (POST /v1/pause), or a fleet operation held "
          "the route (docs/control-plane.md).");
      co_return false;
    }
    count_transaction();
    if (!runtime_.pause->maybe_paused() || !runtime_.pause->blocks(route_name())) co_return true;
    uncount_transaction();  // held again (a new hold began as this one ended)
  }
}

// Where the transaction that starts with `c` goes (routing::decide), on a route with a
// target; sets the transaction's routing key.
routing::RouteDecision ClientSession::choose_side(const routing::Classification& c,
                                                  const routing::MigrationState& state) {
  routing::ResolvedKey key = keys_->resolve(c.comment_routing_key);
  rs().txn_key = std::move(key.key);
  routing::RouterInput in;
  in.state = &state;
  in.has_target = true;
  in.target_healthy = health_ && health_->target.healthy();
  in.source_healthy = !health_ || health_->source.healthy();
  in.target_lagging = route_->sync && route_->sync->lagging(clock_ms());
  in.statement = c.kind;
  in.session_pinned = pinned_;
  in.key = rs().txn_key;
  in.ryw = route_->ryw.get();
  in.now_ms = clock_ms();
  routing::RouteDecision d = routing::decide(in);
  if (d.reason == routing::Reason::target_unhealthy_fallback) {
    metrics().target_fallbacks(route_name(), FallbackReason::target_unhealthy).Increment();
  } else if (d.reason == routing::Reason::target_lagging) {
    metrics().target_fallbacks(route_name(), FallbackReason::target_lagging).Increment();
  }
  return d;
}

// Routes the transaction that starts with `c` and makes its side's server active. On
// failure the client has been answered (refuse_transaction) and false is returned.
asio::awaitable<bool> ClientSession::start_transaction(const routing::Classification& c,
                                                       std::uint8_t trigger) {
  if (drain_requested_ || runtime_.draining.load()) {
    end(EndReason::drain);
    co_return false;
  }
  // Counted as open before the gate is read (the barrier's protocol, pause_gate.hpp).
  if (runtime_.pause) count_transaction();
  if (runtime_.pause && runtime_.pause->maybe_paused() && runtime_.pause->blocks(route_name())) {
    if (!co_await wait_while_paused(trigger)) co_return false;
  }
  // Every way out below but success ends the transaction before it began.
  struct Uncount {
    ClientSession* self;
    bool keep = false;
    ~Uncount() {
      if (!keep) self->uncount_transaction();
    }
  } uncount{this};

  // One snapshot of the route state per transaction: it gives both the authoritative side
  // and the router's input.
  RouteStatesPtr states;
  const routing::MigrationState* state = nullptr;
  if (route_->route->target && runtime_.states) {
    states = runtime_.states->snapshot();
    state = states->find(route_name());
  }
  const Side authoritative = state ? routing::authoritative_side(*state) : Side::source;
  rs().txn_key.clear();
  if (!health_ && runtime_.health) health_ = runtime_.health->route(route_name());
  const std::optional<routing::RouteDecision> decision =
      state ? std::optional(choose_side(c, *state)) : std::nullopt;
  const Side side = decision ? decision->side : authoritative;

  // A server of that side. In transaction mode a server still held from the last
  // transaction (its reader was busy when it ended) is given back first if the side differs.
  if (server_ && active_side_ != side && txn_mode_ && !pinned_) {
    while (s2c_ == S2c::holding && end_reason_ == EndReason::none) {
      // The server direction is in the middle of a message from it; it wakes us when done.
      co_await wait_handoff();
    }
    if (end_reason_ != EndReason::none) co_return false;
    release_active();
  }
  if (!co_await decide_mirroring(state, side, authoritative)) {
    if (end_reason_ == EndReason::none) {
      refuse_transaction(
          trigger, "53300", "the mirror queue of route " + route_name() + " is full",
          "sync.mirror.overflow is block: write transactions wait while the mirror catches up "
          "(docs/sync.md, \"Mirror mode\"). Retry, or check pgshift sync status.");
    }
    co_return false;
  }
  pool::AcquireError aerr;
  bool ok = co_await attach(side, aerr, {.retry_connect = side == authoritative});
  if (!ok && side != authoritative && end_reason_ == EndReason::none) {
    // A split read's side failed its one connect attempt: the authoritative side, at once.
    metrics().target_fallbacks(route_name(), FallbackReason::target_connect).Increment();
    route_metrics_->split(SplitDecision::fallback).Increment();
    aerr = {};
    ok = co_await attach(authoritative, aerr);
  } else if (decision) {
    route_metrics_->split(split_decision(decision->reason)).Increment();
  }
  if (end_reason_ != EndReason::none) co_return false;
  if (!ok) {
    const ClientError e = client_error(aerr);
    refuse_transaction(trigger, e.sqlstate, e.message, e.detail);
    co_return false;
  }
  txn_wrote_ = false;
  uncount.keep = true;
  co_return true;
}

// Appends one client message for the active server (rewritten for prepared statements).
bool ClientSession::forward(std::uint8_t type, std::span<const std::uint8_t> body,
                            std::span<const std::uint8_t> raw) {
  RelayState& st = rs();
  if (st.out.empty()) {
    st.out_gen = server_gen_;
  } else if (st.out_gen != server_gen_) {
    st.out.clear();  // bytes for a server that is gone
    st.out_gen = server_gen_;
  }
  if ((type == wire::fe::query || type == wire::fe::sync || type == wire::fe::function_call) &&
      tracker_.outstanding() == 0) {
    query_start_ = std::chrono::steady_clock::now();
  }
  tracker_.on_frontend(type);
  if (!st.direct.empty()) {
    // (Callers flush after a message that left a direct span; should one not, order holds.)
    st.out.insert(st.out.end(), st.direct.begin(), st.direct.end());
    st.direct = {};
  }
  if (StatementMapper::inspects(type)) {
    // A large Bind's parameters are written from the read buffer (RelayState::direct).
    auto* tail = raw.size() >= kFlushThreshold ? &st.direct : nullptr;
    if (!mapper_.rewrite(type, body, server_->prepared, st.filter, st.out, tail)) {
      end(EndReason::client_protocol_error, "malformed frontend message");
      return false;
    }
  } else if (raw.size() >= kFlushThreshold) {
    st.direct = raw;  // a large message is written from the read buffer, not copied
  } else {
    st.out.insert(st.out.end(), raw.begin(), raw.end());
  }
  if (mirror_txn_) mirror_frontend(type, body, raw);
  return true;
}

// Sends the held extended-protocol messages, now that the transaction has a server.
asio::awaitable<bool> ClientSession::flush_pending() {
  wire::Bytes held;
  held.swap(rs().pending);
  MemoryCharge held_charge = std::move(rs().pending_charge);  // as long as `held` lives
  rs().pending_only_named_parses = false;
  std::size_t pos = 0;
  std::span<const std::uint8_t> raw;
  while (next_held(held, pos, raw)) {
    if (!forward(raw[0], raw.subspan(5), raw)) co_return false;
    // A direct span points into `held`: written before `held` goes.
    if (rs().out.size() >= kFlushThreshold || !rs().direct.empty()) co_await flush_to_server();
  }
  co_return true;
}

asio::awaitable<void> ClientSession::flush_to_server() {
  if (!rs_ || (rs_->out.empty() && rs_->direct.empty())) co_return;
  wire::Bytes& out = rs_->out;  // rs_ is only dropped by this direction, when idle
  const std::span<const std::uint8_t> direct = std::exchange(rs_->direct, {});
  if (!server_ || rs_->out_gen != server_gen_) {
    out.clear();  // its server failed meanwhile; the client has been told
    co_return;
  }
  pool::ServerConnection* s = server_;
  writing_to_server_ = true;
  auto ec = co_await s->stream.write_all(out, direct);  // one system call for both
  writing_to_server_ = false;
  notify_handoff();
  out.clear();
  if (out.capacity() > kFlushThreshold) wire::Bytes().swap(out);
  if (ec && server_ == s) {
    // The server direction sees it fail and decides (ClientSession::on_server_failure).
    s->stream.close();
    co_return;
  }
  // The transaction may have ended while we were writing (the server direction does not
  // give a server back while it is being written to).
  if (server_ == s && tracker_.idle() && txn_mode_ && !pinned_ && s2c_idle_wait()) {
    release_active();
  }
}

// The client direction has read everything it was sent. An idle session (not hot, between
// messages) gives its buffers back and parks the client: no coroutine frame, no buffer, no
// Asio operation until its next bytes (true: the caller returns). Inside a message (CopyData,
// a refused one) the scanner's state must survive, so the session waits hot, with this
// coroutine. `readable`: the client was seen readable, so it is read even with no bytes
// buffered (EOF, an error).
bool ClientSession::park_if_idle(const wire::MessageScanner& scanner, bool readable) {
  if (!hot_ && scanner.at_boundary()) {
    client_buf_.release_if_empty();  // idle clients hold no I/O buffer
    if (rs_ && rs_->disposable() && !server_ && s2c_ == S2c::stopped) rs_.reset();
    if (!readable && !client_.has_buffered_input()) {
      wait_for_client();  // and no coroutine frame either
      return true;
    }
  }
  if (hot_ && scanner.at_boundary()) c2s_to(C2s::hot_wait);
  return false;
}

void ClientSession::forward_copy_piece(std::span<const std::uint8_t> raw) {
  if (rs().out.empty()) rs().out_gen = server_gen_;
  rs().out.insert(rs().out.end(), raw.begin(), raw.end());
  if (mirror_txn_) mirror_->copy_piece(raw);
}

asio::awaitable<void> ClientSession::mux_client_to_server() {
  wire::MessageScanner scanner(wire::Direction::frontend, limits_, mux_client_types());
  IoBuffer& buf = client_buf_;  // may already hold bytes pipelined after the startup packet
  bool unread = !buf.empty();
  bool terminate = false;
  bool more = false;  // the last read filled its buffer (Stream::read_some_drained)
  // Started by on_client_readable(): the client is readable (bytes, EOF or an error).
  bool readable = c2s_ == C2s::woken;
  c2s_to(C2s::running);
  while (end_reason_ == EndReason::none && !terminate) {
    if (!unread) {
      if (buf.empty() && park_if_idle(scanner, std::exchange(readable, false))) co_return;
      // Inside a message, read at once: a client that stopped mid-message and closed is
      // seen now (its FIN may have come in the event of its last bytes).
      more = more || !buf.empty() || !scanner.at_boundary();
      auto [ec, n] = co_await client_.read_some_drained(buf.writable(), more);
      c2s_to(C2s::running);
      // Cooled down by the IdleSweeper (sweep_idle): wait again, without the buffer.
      if (ec == asio::error::operation_aborted && !hot_ && end_reason_ == EndReason::none) continue;
      if (ec) break;
      buf.commit(n);
      become_hot();
    }
    unread = false;
    auto data = buf.data();
    std::size_t pos = 0;
    while (pos < data.size() && end_reason_ == EndReason::none) {
      auto r = scanner.feed(data.subspan(pos));
      if (r.kind == wire::ScanKind::need_more) break;
      if (r.kind == wire::ScanKind::error) {
        end(EndReason::client_protocol_error, "invalid frontend message: " + r.error.message());
        break;
      }
      auto raw = data.subspan(pos, r.consumed);
      if (refusing_) {
        // A piece of a message refused by admit_buffered(): dropped, never held.
        pos += r.consumed;
        if (r.last_piece) finish_refusal(scanner);
        continue;
      }
      if (r.kind == wire::ScanKind::message) {
        // The server direction is re-running a fenced statement (fence_retry.cpp).
        while (fence_ != Fence::none && end_reason_ == EndReason::none) co_await wait_handoff();
        if (end_reason_ != EndReason::none || !co_await on_client_message(r.type, r.body, raw)) {
          terminate = true;
          // Bytes after Terminate: a protocol violation the client is told about.
          if (pos + r.consumed < data.size()) {
            end(EndReason::client_protocol_error, "unexpected message after Terminate");
          }
          break;
        }
      } else if (server_ && !at_boundary() && !skip_until_sync_) {
        forward_copy_piece(raw);  // part of the COPY running on the active server
      }
      pos += r.consumed;
      // (A direct span points into `buf`: written before the next message is handled.)
      if (rs().out.size() >= kFlushThreshold || !rs().direct.empty()) co_await flush_to_server();
    }
    co_await flush_to_server();
    buf.consume(pos);
    if (scanner.bytes_needed() > buf.size()) {
      // A refused message's bytes are handed out as pieces now: scan what is here again.
      if (!admit_buffered(scanner, buf)) unread = !buf.empty();
    } else {
      buf.shrink();  // a large message is done: its block (and charge) go
    }
  }
  end(EndReason::client_closed);
  buf.release_if_empty();
}

}  // namespace pgshift::proxy
