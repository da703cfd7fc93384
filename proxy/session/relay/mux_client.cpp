// Multiplexed relay, client to server: every client message is handled whole (CopyData is
// forwarded in pieces). At a transaction boundary the next transaction is routed before any
// of it is sent: a Query at once, an extended-protocol batch (Parse/Bind/Describe/Close,
// held meanwhile) at its first Execute or Sync (docs/routing.md).
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <utility>

#include "proxy/control/pause_gate.hpp"
#include "proxy/control/route_state_store.hpp"
#include "proxy/session/exclusive_ddl.hpp"
#include "proxy/session/session.hpp"
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

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

QueryClass query_class(StatementClass c) {
  switch (c) {
    case StatementClass::read_only:
    case StatementClass::transaction_begin_read_only:
      return QueryClass::read;
    case StatementClass::write:
    case StatementClass::ddl:
      return QueryClass::write;
    default:
      return QueryClass::other;
  }
}

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

// A statement the proxy knows nothing about (an Execute of an unknown portal, a function
// call): authoritative, never split.
routing::Classification unknown_statement() {
  routing::Classification c;
  c.kind = StatementClass::write;
  return c;
}

// DISCARD ALL / DEALLOCATE drop protocol-level prepared statements on the server too.
bool drops_prepared_statements(std::string_view sql) {
  std::size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
    ++i;
  auto word = sql.substr(i, 10);
  auto starts = [&](std::string_view w) {
    if (word.size() < w.size()) return false;
    for (std::size_t k = 0; k < w.size(); ++k) {
      if ((word[k] | 0x20) != w[k]) return false;
    }
    return true;
  };
  return starts("discard") || starts("deallocate");
}

}  // namespace

const ClientSession::StatementInfo* ClientSession::find_statement(std::string_view name) {
  if (name.empty()) return rs().unnamed_statement.get();
  auto it = rs().statements.find(std::string(name));
  return it == rs().statements.end() ? nullptr : &it->second;
}

void ClientSession::note_statement(const routing::Classification& c) {
  if (c.pins_session() && !pinned_) {
    pinned_ = true;
    metrics().pinned_sessions(route_name_, c.pin).Increment();
    if (!logged_pin_) {
      logged_pin_ = true;
      log_info("session pinned to its server connection",
               {f("session", id_), f("route", route_name_), f("reason", routing::to_string(c.pin)),
                f("pool_mode", txn_mode_ ? "transaction" : "session")});
    }
  }
  if (c.routing_key_change && keys_) keys_->apply(*c.routing_key_change);
  if (c.kind == StatementClass::write || c.kind == StatementClass::ddl) {
    txn_wrote_ = true;
    if (mirror_txn_) mirror_->mark_write();
  }
  route_metrics_->query(active_side_, query_class(c.kind)).Increment();
}

// Routes the transaction that starts with `c` and makes its side's server active. On
// failure the client has been answered (error, and ReadyForQuery unless the extended
// protocol needs a Sync first) and false is returned.
asio::awaitable<bool> ClientSession::start_transaction(const routing::Classification& c,
                                                       char trigger) {
  auto fail = [this, trigger](std::string_view sqlstate, std::string_view message,
                              std::string_view detail) {
    reply_error(sqlstate, message, detail);
    clear_pending();
    if (trigger == 'Q' || trigger == 'S' || trigger == 'F') {
      wire::Bytes z;
      wire::ready_for_query(z, 'I');
      queue_local(z);
    } else {
      skip_until_sync_ = true;
    }
  };
  if (drain_requested_ || runtime_.draining.load()) {
    end(EndReason::drain);
    co_return false;
  }
  // Counted as open before the gate is read (the barrier's protocol, pause_gate.hpp).
  if (runtime_.pause) count_transaction();
  if (runtime_.pause && runtime_.pause->maybe_paused() && runtime_.pause->blocks(route_name_)) {
    uncount_transaction();  // a held transaction is not open: the barrier must not wait for it
    auto wait = route_->route->pool.query_wait_timeout;
    auto deadline = wait.count() > 0 ? PauseGate::Clock::now() + wait
                                     : PauseGate::Clock::now() + PauseGate::kMaxTimeout;
    for (;;) {
      auto r =
          co_await runtime_.pause->wait_if_paused(client_.get_executor(), deadline, route_name_);
      if (end_reason_ != EndReason::none) co_return false;
      if (r == PauseGate::WaitResult::deadline) {
        fail("57014",
             "canceling statement: pgshift is paused and the pause outlasted query_wait_timeout",
             "An operator paused new transactions (POST /v1/pause), or a fleet operation held "
             "the route (docs/control-plane.md).");
        co_return false;
      }
      count_transaction();
      if (!runtime_.pause->maybe_paused() || !runtime_.pause->blocks(route_name_)) break;
      uncount_transaction();  // held again (a new hold began as this one ended)
    }
  }
  // Every way out below but success ends the transaction before it began.
  struct Uncount {
    ClientSession* self;
    bool keep = false;
    ~Uncount() {
      if (!keep) self->uncount_transaction();
    }
  } uncount{this};

  // Where the transaction goes.
  // One snapshot of the route state per transaction: it gives both the authoritative side
  // and the router's input.
  RouteStatesPtr states;
  const routing::MigrationState* state = nullptr;
  if (route_->route->target && runtime_.states) {
    states = runtime_.states->snapshot();
    state = states->find(route_name_);
  }
  const Side authoritative = state ? routing::authoritative_side(*state) : Side::source;
  Side side = authoritative;
  rs().txn_key.clear();
  {
    if (!health_ && runtime_.health) health_ = runtime_.health->route(route_name_);
    if (state) {
      routing::ResolvedKey key = keys_->resolve(c.comment_routing_key);
      rs().txn_key = std::move(key.key);
      routing::RouterInput in;
      in.state = state;
      in.has_target = true;
      in.target_healthy = health_ && health_->target.healthy();
      in.source_healthy = !health_ || health_->source.healthy();
      in.target_lagging = route_->sync && route_->sync->lagging(steady_ms());
      in.statement = c.kind;
      in.only_unknown_functions = c.only_unknown_functions;
      in.session_pinned = pinned_;
      in.key = rs().txn_key;
      in.ryw = route_->ryw.get();
      in.now_ms = steady_ms();
      routing::RouteDecision d = routing::decide(in);
      side = d.side;
      route_metrics_->split(split_decision(d.reason)).Increment();
      if (d.reason == routing::Reason::target_unhealthy_fallback) {
        metrics().target_fallbacks(route_name_, FallbackReason::target_unhealthy).Increment();
      } else if (d.reason == routing::Reason::target_lagging) {
        metrics().target_fallbacks(route_name_, FallbackReason::target_lagging).Increment();
      }
    }
  }

  // A server of that side. In transaction mode a server still held from the last
  // transaction (its reader was busy when it ended) is given back first if the side differs.
  if (server_ && active_side_ != side && txn_mode_ && !pinned_) {
    while (s2c_holds_bytes_ && end_reason_ == EndReason::none) {
      // The server direction is in the middle of a message from it; it wakes us when done.
      co_await wait_handoff();
    }
    if (end_reason_ != EndReason::none) co_return false;
    release_active();
  }
  if (!co_await decide_mirroring(state, side, authoritative)) {
    if (end_reason_ == EndReason::none) {
      fail("53300", "the mirror queue of route " + route_name_ + " is full",
           "sync.mirror.overflow is block: write transactions wait while the mirror catches up "
           "(docs/sync.md, \"Mirror mode\"). Retry, or check pgshift sync status.");
    }
    co_return false;
  }
  pool::AcquireError aerr;
  bool ok = co_await attach(side, aerr, {.retry_connect = side == authoritative});
  if (!ok && side != authoritative && end_reason_ == EndReason::none) {
    // A split read's side failed its one connect attempt: the authoritative side, at once.
    metrics().target_fallbacks(route_name_, FallbackReason::target_connect).Increment();
    route_metrics_->split(SplitDecision::fallback).Increment();
    aerr = {};
    ok = co_await attach(authoritative, aerr);
  }
  if (end_reason_ != EndReason::none) co_return false;
  if (!ok) {
    std::string sqlstate = aerr.sqlstate.empty() ? std::string("08006") : aerr.sqlstate;
    bool plain = aerr.from_server || aerr.timed_out;
    std::string message =
        plain ? aerr.message : std::string("pgshift could not connect to the upstream server");
    std::string detail = plain ? std::string() : aerr.message;
    fail(sqlstate, message, detail);
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
  if ((type == 'Q' || type == 'S' || type == 'F') && tracker_.outstanding() == 0) {
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
  c2s_writing_ = true;
  auto ec = co_await s->stream.write_all(out, direct);  // one system call for both
  c2s_writing_ = false;
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
  if (server_ == s && tracker_.idle() && txn_mode_ && !pinned_ && s2c_idle_wait_) {
    release_active();
  }
}

asio::awaitable<bool> ClientSession::on_client_message(std::uint8_t type,
                                                       std::span<const std::uint8_t> body,
                                                       std::span<const std::uint8_t> raw) {
  if (type == 'X') co_return false;
  if (lost_transaction_) {
    // The server died while the client was inside a transaction and idle: the first thing
    // it sends after that learns that the transaction is gone.
    lost_transaction_ = false;
    reply_error("08006", "the server connection was lost; the transaction was rolled back",
                "pgshift lost its connection to the upstream server in the middle of the "
                "transaction. The connection is usable for a new transaction.");
    if (type == 'Q') {
      wire::Bytes z;
      wire::ready_for_query(z, 'I');
      queue_local(z);
      co_return true;
    }
    skip_until_sync_ = true;
  }
  if (skip_until_sync_) {
    if (type == 'S') {
      skip_until_sync_ = false;
      wire::Bytes z;
      wire::ready_for_query(z, tracker_.status());
      queue_local(z);
    }
    co_return true;
  }
  const bool boundary = at_boundary();
  if (route_->route->target) {
    // Kept in case the old side's fence sends the transaction elsewhere (fence_retry.cpp).
    if (boundary && rs().pending.empty()) rs().rerun.begin();
    rs().rerun.client_message(raw);
  }
  switch (type) {
    case 'Q': {
      std::string_view sql;
      if (wire::parse_query(body, sql)) {
        end(EndReason::client_protocol_error, "malformed Query message");
        co_return true;
      }
      routing::Classification c = route_->classifier->classify(sql);
      if (boundary && rs().pending.empty()) {
        if (c.only_routing_key && c.routing_key_change) {
          answer_routing_key_locally(c);
          co_return true;
        }
        if (!co_await start_transaction(c, 'Q')) co_return true;
      } else if (!rs().pending.empty()) {
        // A Query in the middle of an unsynced batch: the batch goes first, where the
        // Query goes.
        if (boundary && !co_await start_transaction(c, 'Q')) co_return true;
        if (!co_await flush_pending()) co_return true;
      }
      note_statement(c);
      mirror_note_settings(c, sql);
      if (server_ && drops_prepared_statements(sql)) server_->prepared.clear();
      free_databases_for_sql(*pools_->registry(), sql, id_);  // DROP DATABASE... (14.2)
      if (server_ && leaves_lasting_state(sql)) server_->no_reuse = true;  // 14.4
      forward(type, body, raw);
      co_return true;
    }
    case 'P': {
      wire::Parse p;
      if (wire::parse_parse(body, p)) {
        end(EndReason::client_protocol_error, "malformed Parse message");
        co_return true;
      }
      free_databases_for_sql(*pools_->registry(), p.query, id_);  // DROP DATABASE... (14.2)
      StatementInfo info{route_->classifier->classify(p.query), true};
      mirror_note_settings(info.c, p.query);
      rs().last_parse_named = !p.statement.empty();
      if (rs().last_parse_named && mapper_.knows(std::string(p.statement))) {
        // A second Parse of a name the client has: the proxy may answer 42P05 or replace
        // the statement (answer_parses_locally, StatementMapper), so which text runs under
        // this name is not certain: never split it.
        info.c = unknown_statement();
      }
      if (p.statement.empty()) {
        if (!rs().unnamed_statement) rs().unnamed_statement = std::make_unique<StatementInfo>();
        // A portal bound from the previous unnamed statement now has unknown text.
        if (rs().last_bind == rs().unnamed_statement.get()) rs().last_bind = nullptr;
        *rs().unnamed_statement = std::move(info);
      } else {
        StatementInfo& slot = rs().statements[std::string(p.statement)];
        if (rs().last_bind == &slot) rs().last_bind = nullptr;
        slot = std::move(info);
      }
      break;
    }
    case 'B': {
      wire::BindNames names;
      if (wire::parse_bind_names(body, names)) {
        end(EndReason::client_protocol_error, "malformed Bind message");
        co_return true;
      }
      const StatementInfo* st = find_statement(names.statement);
      rs().last_bind = st;
      break;
    }
    case 'C': {
      wire::CloseOrDescribe m;
      if (wire::parse_close(body, m)) {
        end(EndReason::client_protocol_error, "malformed Close message");
        co_return true;
      }
      if (m.kind == 'S' && !m.name.empty()) {
        auto it = rs().statements.find(std::string(m.name));
        if (it != rs().statements.end()) {
          if (rs().last_bind == &it->second) rs().last_bind = nullptr;
          rs().statements.erase(it);
        }
      }
      break;
    }
    case 'D':
      break;
    case 'H':
      if (boundary && rs().pending.empty()) co_return true;  // nothing to flush
      if (boundary && !co_await start_transaction(unknown_statement(), 'H')) co_return true;
      break;
    case 'E': {
      const routing::Classification c = rs().last_bind ? rs().last_bind->c : unknown_statement();
      if (boundary && !co_await start_transaction(c, 'E')) co_return true;
      note_statement(c);
      break;
    }
    case 'S':
      if (boundary) {
        if (rs().pending.empty()) {
          // A Sync with nothing before it: answered here, no server needed.
          wire::Bytes z;
          wire::ready_for_query(z, tracker_.status());
          queue_local(z);
          co_return true;
        }
        if (rs().pending_only_named_parses) {
          // A prepare round trip (libpq PQprepare): answered here. The statements are
          // prepared on a server when first used, so preparing never waits for a server
          // (a client that prepares while holding other clients' answers unread, as
          // pgbench does, would otherwise deadlock a small pool).
          answer_parses_locally();
          co_return true;
        }
        routing::Classification c;
        c.kind = StatementClass::other;
        if (!co_await start_transaction(c, 'S')) co_return true;
      }
      break;
    case 'F':
      if (boundary && !co_await start_transaction(unknown_statement(), 'F')) co_return true;
      note_statement(unknown_statement());
      break;
    case 'd':
    case 'c':
    case 'f':
      // COPY data belongs to the running COPY; outside one the server ignores it too.
      if (server_ && !boundary) forward(type, body, raw);
      co_return true;
    default:
      break;
  }
  if (at_boundary() && (type == 'P' || type == 'B' || type == 'D' || type == 'C')) {
    const bool named_parse = type == 'P' && rs().last_parse_named;
    const bool only_named = named_parse && (rs().pending.empty() || rs().pending_only_named_parses);
    if (hold_pending(type, raw)) rs().pending_only_named_parses = only_named;  // routed at E or S
    co_return true;
  }
  if (!server_) {
    // Only reachable if a start_transaction() above did not run: a bug, not the client's.
    metrics().errors(ErrorKind::internal).Increment();
    end(EndReason::client_protocol_error, "internal error: no server for the transaction");
    co_return true;
  }
  if (!rs().pending.empty() && !co_await flush_pending()) co_return true;
  forward(type, body, raw);
  co_return true;
}

asio::awaitable<void> ClientSession::mux_client_to_server() {
  wire::MessageScanner scanner(wire::Direction::frontend, limits_, mux_client_types());
  IoBuffer& buf = client_buf_;  // may already hold bytes pipelined after the startup packet
  bool unread = !buf.empty();
  bool terminate = false;
  bool more = false;  // the last read filled its buffer (Stream::read_some_drained)
  while (end_reason_ == EndReason::none && !terminate) {
    if (!unread) {
      if (buf.empty()) {
        // Inside a message (CopyData, a refused one) the scanner's state must survive, so
        // the session waits hot, with this coroutine.
        if (!hot_ && scanner.at_boundary()) {
          buf.release_if_empty();  // idle clients hold no I/O buffer
          if (rs_ && rs_->disposable() && !server_ && !s2c_running_) rs_.reset();
          if (!std::exchange(client_readable_, false) && !client_.has_buffered_input()) {
            wait_for_client();  // and no coroutine frame either
            co_return;
          }
        }
        c2s_hot_wait_ = hot_ && scanner.at_boundary();
      }
      // Inside a message, read at once: a client that stopped mid-message and closed is
      // seen now (its FIN may have come in the event of its last bytes).
      more = more || !buf.empty() || !scanner.at_boundary();
      auto [ec, n] = co_await client_.read_some_drained(buf.writable(), more);
      c2s_hot_wait_ = false;
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
        while (retrying_ && end_reason_ == EndReason::none) co_await wait_handoff();
        if (end_reason_ != EndReason::none || !co_await on_client_message(r.type, r.body, raw)) {
          terminate = true;
          // Bytes after Terminate: a protocol violation the client is told about.
          if (pos + r.consumed < data.size()) {
            end(EndReason::client_protocol_error, "unexpected message after Terminate");
          }
          break;
        }
      } else if (server_ && !at_boundary() && !skip_until_sync_) {
        // A piece of CopyData: part of the COPY running on the active server.
        if (rs().out.empty()) rs().out_gen = server_gen_;
        rs().out.insert(rs().out.end(), raw.begin(), raw.end());
        if (mirror_txn_) mirror_->copy_piece(raw);
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
