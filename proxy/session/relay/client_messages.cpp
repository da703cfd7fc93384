// Multiplexed relay, client to server: what happens with each whole client message before
// it is forwarded (on_client_message): the statement records that route an extended-protocol
// batch, the transaction's start at its first routed message, and the answers the proxy
// gives itself. The reading loop and the writes are in mux_client.cpp.
#include <memory>
#include <string>

#include "proxy/session/exclusive_ddl.hpp"
#include "proxy/session/session.hpp"
#include "proxy/session/upstream_error.hpp"
#include "proxy/telemetry/log.hpp"
#include "routing/database_ddl.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

using routing::StatementClass;

namespace {

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

// A statement the proxy knows nothing about (an Execute of an unknown portal, a function
// call): authoritative, never split.
routing::Classification unknown_statement() {
  routing::Classification c;
  c.kind = StatementClass::write;
  return c;
}

// A Sync with held messages: routed like a statement that is neither read nor write.
routing::Classification other_statement() {
  routing::Classification c;
  c.kind = StatementClass::other;
  return c;
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
    metrics().pinned_sessions(route_name(), c.pin).Increment();
    if (!logged_pin_) {
      logged_pin_ = true;
      log_info("session pinned to its server connection",
               {f("session", id_), f("route", route_name()), f("reason", routing::to_string(c.pin)),
                f("pool_mode", txn_mode_ ? "transaction" : "session")});
    }
  }
  if (c.routing_key_change && keys_) keys_->apply(*c.routing_key_change);
  if (c.controls_transaction && mirror_txn_) mirror_->mark_transaction_control();
  if (c.kind == StatementClass::write || c.kind == StatementClass::ddl) {
    txn_wrote_ = true;
    if (mirror_txn_) mirror_->mark_write();
  }
  route_metrics_->query(active_side_, query_class(c.kind)).Increment();
}

void ClientSession::log_for_rerun(bool boundary, std::span<const std::uint8_t> raw) {
  if (boundary && rs().pending.empty()) rs().rerun.begin();
  rs().rerun.client_message(raw);
}

// A Parse, Bind, Describe or Close at a boundary: held until the batch is routed.
void ClientSession::hold_until_routed(std::uint8_t type, std::span<const std::uint8_t> raw) {
  const bool named_parse = type == wire::fe::parse && rs().last_parse_named;
  const bool only_named = named_parse && (rs().pending.empty() || rs().pending_only_named_parses);
  if (hold_pending(type, raw)) rs().pending_only_named_parses = only_named;
}

void ClientSession::end_without_server() {
  metrics().errors(ErrorKind::internal).Increment();
  end(EndReason::client_protocol_error, "internal error: no server for the transaction");
}

bool ClientSession::answered_without_server(std::uint8_t type) {
  if (lost_transaction_) {
    // The server died while the client was inside a transaction and idle: the first thing
    // it sends after that learns that the transaction is gone.
    lost_transaction_ = false;
    const ClientError e = server_lost(ServerLoss::transaction);
    reply_error(e.sqlstate, e.message, e.detail);
    if (type == wire::fe::query) {
      wire::Bytes z;
      wire::ready_for_query(z, wire::txn_status::idle);
      queue_local(z);
      return true;
    }
    skip_until_sync_ = true;
  }
  if (!skip_until_sync_) return false;
  if (type == wire::fe::sync) {
    skip_until_sync_ = false;
    wire::Bytes z;
    wire::ready_for_query(z, tracker_.status());
    queue_local(z);
  }
  return true;
}

bool ClientSession::note_parse(std::span<const std::uint8_t> body) {
  wire::Parse p;
  if (wire::parse_parse(body, p)) {
    end(EndReason::client_protocol_error, "malformed Parse message");
    return false;
  }
  free_databases_for_sql(*pools_->registry(), p.query, id_);  // DROP DATABASE... (14.2)
  StatementInfo info{route_->classifier->classify(p.query), true};
  mirror_note_settings(info.c, p.query);
  rs().last_parse_named = !p.statement.empty();
  if (rs().last_parse_named && mapper_.knows(std::string(p.statement))) {
    // A second Parse of a name the client has: the proxy may answer 42P05 or replace the
    // statement (answer_parses_locally, StatementMapper), so which text runs under this name
    // is not certain: never split it.
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
  return true;
}

bool ClientSession::note_bind(std::span<const std::uint8_t> body) {
  wire::BindNames names;
  if (wire::parse_bind_names(body, names)) {
    end(EndReason::client_protocol_error, "malformed Bind message");
    return false;
  }
  rs().last_bind = find_statement(names.statement);
  return true;
}

bool ClientSession::note_close(std::span<const std::uint8_t> body) {
  wire::CloseOrDescribe m;
  if (wire::parse_close(body, m)) {
    end(EndReason::client_protocol_error, "malformed Close message");
    return false;
  }
  if (m.kind == wire::fe::target_statement && !m.name.empty()) {
    auto it = rs().statements.find(std::string(m.name));
    if (it != rs().statements.end()) {
      if (rs().last_bind == &it->second) rs().last_bind = nullptr;
      rs().statements.erase(it);
    }
  }
  return true;
}

bool ClientSession::note_statement_message(std::uint8_t type, std::span<const std::uint8_t> body) {
  if (type == wire::fe::parse) return note_parse(body);
  return type == wire::fe::bind ? note_bind(body) : note_close(body);
}

// A Query on its way to the server (routed): its effects on the session and the server.
void ClientSession::forward_query(std::string_view sql, const routing::Classification& c,
                                  std::span<const std::uint8_t> body,
                                  std::span<const std::uint8_t> raw) {
  note_statement(c);
  mirror_note_settings(c, sql);
  if (server_ && routing::drops_prepared_statements(sql)) server_->prepared.clear();
  free_databases_for_sql(*pools_->registry(), sql, id_);               // DROP DATABASE... (14.2)
  if (server_ && leaves_lasting_state(sql)) server_->no_reuse = true;  // 14.4
  forward(wire::fe::query, body, raw);
}

// A Sync at a boundary with something held: answered here when it can be. True when it was.
bool ClientSession::answer_sync_locally() {
  if (rs().pending.empty()) {
    // A Sync with nothing before it: answered here, no server needed.
    wire::Bytes z;
    wire::ready_for_query(z, tracker_.status());
    queue_local(z);
    return true;
  }
  if (rs().pending_only_named_parses) {
    // A prepare round trip (libpq PQprepare): answered here. The statements are prepared on a
    // server when first used, so preparing never waits for a server (a client that prepares
    // while holding other clients' answers unread, as pgbench does, would otherwise deadlock
    // a small pool).
    answer_parses_locally();
    return true;
  }
  return false;
}

asio::awaitable<bool> ClientSession::on_client_message(std::uint8_t type,
                                                       std::span<const std::uint8_t> body,
                                                       std::span<const std::uint8_t> raw) {
  if (type == wire::fe::terminate) co_return false;
  if (answered_without_server(type)) co_return true;
  const bool boundary = at_boundary();
  // Kept in case the old side's fence sends the transaction elsewhere (fence_retry.cpp).
  if (route_->route->target) log_for_rerun(boundary, raw);
  switch (type) {
    case wire::fe::query: {
      std::string_view sql;
      if (wire::parse_query(body, sql)) {
        end(EndReason::client_protocol_error, "malformed Query message");
        co_return true;
      }
      const routing::Classification c = route_->classifier->classify(sql);
      if (boundary && rs().pending.empty()) {
        if (c.only_routing_key && c.routing_key_change) {
          answer_routing_key_locally(c);
          co_return true;
        }
        if (!co_await start_transaction(c, type)) co_return true;
      } else if (!rs().pending.empty()) {
        // A Query in the middle of an unsynced batch: the batch goes first, where the
        // Query goes.
        if (boundary && !co_await start_transaction(c, type)) co_return true;
        if (!co_await flush_pending()) co_return true;
      }
      forward_query(sql, c, body, raw);
      co_return true;
    }
    case wire::fe::parse:
    case wire::fe::bind:
    case wire::fe::close:
      if (!note_statement_message(type, body)) co_return true;
      break;
    case wire::fe::flush:
      if (boundary && rs().pending.empty()) co_return true;  // nothing to flush
      if (boundary && !co_await start_transaction(unknown_statement(), type)) co_return true;
      break;
    case wire::fe::execute: {
      const routing::Classification c = rs().last_bind ? rs().last_bind->c : unknown_statement();
      if (boundary && !co_await start_transaction(c, type)) co_return true;
      note_statement(c);
      break;
    }
    case wire::fe::sync:
      if (boundary) {
        if (answer_sync_locally()) co_return true;
        if (!co_await start_transaction(other_statement(), type)) co_return true;
      }
      break;
    case wire::fe::function_call:
      if (boundary && !co_await start_transaction(unknown_statement(), type)) co_return true;
      note_statement(unknown_statement());
      break;
    case wire::fe::copy_data:
    case wire::fe::copy_done:
    case wire::fe::copy_fail:
      // COPY data belongs to the running COPY; outside one the server ignores it too.
      if (server_ && !boundary) forward(type, body, raw);
      co_return true;
    default:
      break;
  }
  if (at_boundary() && StatementMapper::inspects(type)) {
    hold_until_routed(type, raw);  // routed at Execute or Sync
    co_return true;
  }
  if (!server_) {
    // Only reachable if a start_transaction() above did not run: a bug, not the client's.
    end_without_server();
    co_return true;
  }
  if (!rs().pending.empty() && !co_await flush_pending()) co_return true;
  forward(type, body, raw);
  co_return true;
}

}  // namespace pgshift::proxy
