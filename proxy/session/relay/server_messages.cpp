// Multiplexed relay, server to client: what the server direction does with each message it
// reads whole (ReadyForQuery, ErrorResponse, ParseComplete, CloseComplete, ParameterStatus,
// and CommandComplete on a route with a target), and which bytes the client does not get
// (answers to messages the proxy injected, a fenced side's answers). Synchronous: the I/O
// is in mux_server.cpp.
#include <chrono>

#include "proxy/control/state_store.hpp"
#include "proxy/session/relay/fence.hpp"
#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

namespace {

// The client does not get the bytes from here on unless they are added back to `kept`.
void start_dropping(std::span<const std::uint8_t> data, wire::Bytes& kept, bool& dropped,
                    std::size_t pos) {
  if (!dropped) kept.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(pos));
  dropped = true;
}

}  // namespace

void ClientSession::S2cLoop::restart(const wire::Limits& limits, std::uint64_t next_gen) {
  buf.consume(buf.size());
  unscanned = false;
  scanner = wire::MessageScanner(wire::Direction::backend, limits, types);
  gen = next_gen;
  more = false;
}

wire::MessageScanner::TypeSet ClientSession::server_scanner_types(bool has_target) {
  // CommandComplete is looked at only on a route with a target: a mirrored route's replay
  // compares its tags, and a stale sidecar's re-run needs to know what the transaction ran
  // (RerunLog).
  auto types =
      wire::type_set({wire::be::ready_for_query, wire::be::parse_complete, wire::be::close_complete,
                      wire::be::error_response, wire::be::parameter_status});
  if (has_target) types.set(wire::be::command_complete);
  return types;
}

ClientSession::Scanned ClientSession::scan_server_bytes(S2cLoop& l, pool::ServerConnection* s) {
  const std::span<const std::uint8_t> data = l.buf.data();
  Scanned sc;
  l.kept.clear();
  while (sc.pos < data.size()) {
    auto r = l.scanner.feed(data.subspan(sc.pos));
    if (r.kind == wire::ScanKind::need_more) break;
    if (r.kind == wire::ScanKind::error) {
      l.server_ok = false;
      end(EndReason::server_protocol_error,
          "lost synchronization with server: " + r.error.message());
      break;
    }
    bool keep = true;
    if (r.kind == wire::ScanKind::message) {
      if (!on_server_message(r, s, l, sc, keep)) break;
      keep = rerun_track(r.type, r.body, keep);
    } else if (r.kind == wire::ScanKind::skip) {
      if (r.first_piece) l.piece_keep = rerun_track(r.type, {}, true);
      keep = l.piece_keep;
    }
    if (!keep) {
      start_dropping(data, l.kept, sc.dropped, sc.pos);
    } else if (sc.dropped) {
      l.kept.insert(l.kept.end(), data.begin() + static_cast<std::ptrdiff_t>(sc.pos),
                    data.begin() + static_cast<std::ptrdiff_t>(sc.pos + r.consumed));
    }
    sc.pos += r.consumed;
    if (sc.fatal) break;
  }
  return sc;
}

bool ClientSession::on_server_message(const wire::ScanResult& r, pool::ServerConnection* s,
                                      S2cLoop& l, Scanned& sc, bool& keep) {
  switch (r.type) {
    case wire::be::ready_for_query:
      if (!on_server_ready(r.body, s, sc)) {
        l.server_ok = false;
        return false;
      }
      return true;
    case wire::be::error_response:
      on_server_error(r, s, l, sc, keep);
      return true;
    case wire::be::command_complete:
      if (mirror_txn_) mirror_backend(r.type, r.body);
      break;
    case wire::be::parameter_status:
      // The client changed a reported setting; the next client of this server gets its own
      // values set again (pool/server_params.hpp).
      s->param_state.unknown = true;
      break;
    default:
      break;
  }
  if (mirror_settings_) mirror_settings_answer(r.type, r.body);
  keep = rs().filter.should_forward(r.type, s->prepared);
  return true;
}

bool ClientSession::on_server_ready(std::span<const std::uint8_t> body, pool::ServerConnection* s,
                                    Scanned& sc) {
  char status = wire::txn_status::idle;
  if (wire::parse_ready_for_query(body, status)) {
    end(EndReason::server_protocol_error, "malformed ReadyForQuery");
    return false;
  }
  tracker_.on_ready_for_query(status);
  s->txn_status = status;
  rs().filter.should_forward(wire::be::ready_for_query, s->prepared);
  // After a fence error the client gets the re-run's answers (fence_retry.cpp).
  if (fence_dropping()) sc.rerun_due = tracker_.outstanding() == 0;
  if (tracker_.outstanding() == 0) {
    route_metrics_->latency(active_side_)
        .Observe(seconds(std::chrono::steady_clock::now() - query_start_));
  }
  if (mirror_txn_) {
    if (fence_dropping()) {
      mirror_->clear();  // re-run on the new side: not this side's transaction
      mirror_txn_ = false;
    } else {
      mirror_ready(status);
    }
  }
  if (mirror_settings_) mirror_settings_->on_ready_for_query(status);
  if (status == wire::txn_status::idle) on_transaction_end();
  return true;
}

void ClientSession::on_server_error(const wire::ScanResult& r, pool::ServerConnection* s,
                                    S2cLoop& l, Scanned& sc, bool& keep) {
  wire::ErrorFields ef;
  const bool parsed = !wire::parse_error_fields(r.body, ef);
  if (parsed && is_fence_error(ef)) {
    // A stale sidecar met the fence (fence_retry.cpp): re-run when the transaction ran
    // nothing but harmless statements, else one retryable error instead.
    rs().filter.should_forward(r.type, s->prepared);  // its bookkeeping only
    keep = false;
    if (runtime_.states) runtime_.states->refresh_soon();
    if (fence_rerunnable()) {
      fence_to(Fence::dropping);  // the client direction sends nothing meanwhile
      return;
    }
    rs().rerun.clear();
    rs().rerun.stop_dropping();
    start_dropping(l.buf.data(), l.kept, sc.dropped, sc.pos);
    wire::error_response(l.kept, {.severity = "ERROR",
                                  .sqlstate = "40001",
                                  .message = fence_moved_error(ef, route_name()),
                                  .detail = ef.message()});
    log_info("fence met inside a transaction: retryable error for the client",
             {f("session", id_), f("route", route_name())});
  } else if (parsed && !server_holds_state() &&
             (ef.severity() == "FATAL" || ef.severity() == "PANIC")) {
    // The server is going away (restart, admin shutdown): when it holds no session state
    // the client keeps its connection and gets an ERROR instead (on_server_failure).
    sc.fatal = true;
    keep = false;
    log_info("server ends the connection",
             {f("session", id_), f("sqlstate", ef.sqlstate()), f("message", ef.message())});
  } else {
    keep = rs().filter.should_forward(r.type, s->prepared);
    if (mirror_txn_) mirror_backend(r.type, r.body);
    if (mirror_settings_) mirror_settings_answer(r.type, r.body);
  }
}

}  // namespace pgshift::proxy
