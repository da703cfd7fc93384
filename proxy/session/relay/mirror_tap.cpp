// The relay's tap for mirrored writes (docs/sync.md, "Mirror mode"): which transactions are
// mirrored, what of them is copied into the session's MirrorCapture, and the hand-off of
// the committed ones to Runtime::mirror at the transaction boundary.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "proxy/control/pause_gate.hpp"
#include "proxy/runtime/mirror_sink.hpp"
#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
#include "routing/mirror_safety.hpp"
#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

namespace {

// The phases in which the authoritative side's writes are replayed on the other side: from
// the mirror's start until the source is retired.
bool mirrored_phase(config::Phase p) {
  return p == config::Phase::sync || p == config::Phase::cutover ||
         p == config::Phase::target_primary;
}

}  // namespace

asio::awaitable<bool> ClientSession::decide_mirroring(const routing::MigrationState* state,
                                                      routing::Side side,
                                                      routing::Side authoritative) {
  mirror_txn_ = false;
  MirrorSink* sink = runtime_.mirror.get();
  if (!sink || !state || route_->route->sync.mode != config::SyncMode::mirror ||
      !mirrored_phase(state->phase) || side != authoritative || !sink->mirroring(route_name())) {
    co_return true;
  }
  if (!sink->has_room(route_name()) && !co_await wait_mirror_room()) co_return false;
  mirror_txn_ = true;
  if (!mirror_settings_) {
    mirror_settings_ = std::make_unique<MirrorSettings>(profile_->tracked, startup_options());
  }
  mirror_to_ =
      authoritative == routing::Side::source ? routing::Side::target : routing::Side::source;
  if (!mirror_) mirror_ = std::make_unique<MirrorCapture>();
  co_return true;
}

std::string_view ClientSession::startup_options() const {
  for (const auto& [k, v] : profile_->identity.startup_params) {
    if (k == "options") return v;
  }
  return {};
}

void ClientSession::mirror_note_settings(const routing::Classification& c, std::string_view sql) {
  // Cheap test first: most statements cannot change a session setting (RESET does not pin).
  if (!c.pins_session() && c.kind != routing::StatementClass::session_state &&
      c.statement_count < 2) {
    return;
  }
  if (route_->route->sync.mode != config::SyncMode::mirror) return;
  if (!mirror_settings_) {
    mirror_settings_ = std::make_unique<MirrorSettings>(profile_->tracked, startup_options());
  }
  for (const auto& r : mirror_settings_->on_statement(sql, tracker_.outstanding())) {
    // Not carried to the replay: counted, logged once (docs/sync.md, "Session settings").
    if (runtime_.mirror) runtime_.mirror->note_unsafe(route_name(), "session_setting", r.name);
  }
}

void ClientSession::mirror_settings_answer(std::uint8_t type, std::span<const std::uint8_t> body) {
  if (type == wire::be::parameter_status) {
    mirror_settings_->on_parameter_status(body);
  } else if (type == wire::be::error_response) {
    mirror_settings_->on_error();
  } else if (type == wire::be::command_complete) {
    std::string_view tag(reinterpret_cast<const char*>(body.data()), body.size());
    if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
    mirror_settings_->on_command_complete(tag);
  }
}

namespace {
// One wait for room in a mirror queue (overflow block). The replay's wakeup posts to the
// session's executor, where `woken` is set and the timer cancelled.
struct RoomWait {
  explicit RoomWait(asio::any_io_executor ex) : timer(std::move(ex)) {}
  asio::steady_timer timer;
  bool woken = false;  // on the session's thread only
};
}  // namespace

asio::awaitable<bool> ClientSession::wait_mirror_room() {
  // overflow: block. The new transaction waits (without a server) until the replay makes room
  // in the queue, woken by it (MirrorSink::wait_for_room), or until query_wait_timeout.
  const auto wait = route_->route->pool.query_wait_timeout;
  const auto deadline = std::chrono::steady_clock::now() +
                        (wait.count() > 0 ? wait : std::chrono::milliseconds(60000));
  auto w = std::make_shared<RoomWait>(client_.get_executor());
  for (;;) {
    w->woken = false;
    // The wakeup runs on the mirror's thread; it hands `w` to the session's executor, so the
    // timer is touched (and released) on this thread only.
    auto wake = [w]() mutable {
      auto ex = w->timer.get_executor();
      asio::post(ex, [w = std::move(w)] {
        w->woken = true;
        w->timer.cancel();
      });
    };
    if (runtime_.mirror->wait_for_room(route_name(), std::move(wake))) co_return true;
    // No lost wakeup on this side: the posted handler runs on this thread, so it cannot run
    // between the registration above and the wait below (no suspension between them); it
    // runs either before the wait is checked here (woken is set: the wait is skipped) or
    // while the wait is pending (it is cancelled).
    if (!w->woken) {
      w->timer.expires_at(deadline);
      co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    if (end_reason_ != EndReason::none) co_return false;
    if (!w->woken) co_return false;  // the deadline passed
    // Woken: look again (another session may have taken the room first).
  }
}

void ClientSession::mirror_frontend(std::uint8_t type, std::span<const std::uint8_t> body,
                                    std::span<const std::uint8_t> raw) {
  MirrorCapture& cap = *mirror_;
  if (type == 'd' || type == 'c' || type == 'f') {
    cap.copy_piece(raw);
    return;
  }
  std::string_view sql;
  if (type == 'Q') {
    if (wire::parse_query(body, sql)) sql = {};
  } else if (type == 'P') {
    wire::Parse p;
    if (!wire::parse_parse(body, p)) sql = p.query;
  }
  if (!sql.empty() && mirror_safety_candidate(sql)) {
    const routing::MirrorSafety safety = routing::classify_mirror_safety(sql);
    for (auto reason : safety.reasons.to_vector()) {
      runtime_.mirror->note_unsafe(route_name(), routing::to_string(reason), sql);
    }
  }
  wire::Bytes& out = cap.buffer();
  if (StatementMapper::inspects(type)) {
    pool::PreparedSet& unit = cap.unit_statements();
    if (!mapper_.mirror_copy(type, body, unit, out)) return;  // forward() ended the session
  } else {
    out.insert(out.end(), raw.begin(), raw.end());
  }
  cap.message_sent(type);
}

void ClientSession::mirror_backend(std::uint8_t type, std::span<const std::uint8_t> body) {
  if (type == 'C') {
    std::string_view tag(reinterpret_cast<const char*>(body.data()), body.size());
    if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
    mirror_->on_command_complete(tag);
  } else if (type == 'E') {
    wire::ErrorFields ef;
    if (!wire::parse_error_fields(body, ef)) mirror_->on_error(ef.sqlstate());
  }
}

void ClientSession::mirror_ready(char status) {
  // Before mirror_settings_ sees this ReadyForQuery: the settings the unit ran with.
  mirror_->on_ready_for_query(status, mirror_settings_->current(), mirror_settings_->changing());
  if (!tracker_.idle()) return;
  const bool ack_sync = route_->route->sync.mirror.ack == config::MirrorAck::sync;
  for (auto& txn : mirror_->take()) {
    txn->route = route_name();
    txn->session = id_;
    txn->to = mirror_to_;  // committed_at: stamped by submit(), under the queue's lock
    if (ack_sync) {
      if (!mirror_acks_) mirror_acks_ = std::make_shared<MirrorAcks>(client_.get_executor());
      ++mirror_acks_->pending;
      txn->done = [acks = mirror_acks_, ex = client_.get_executor()](bool) {
        asio::post(ex, [acks] {
          if (--acks->pending == 0) acks->timer.cancel();
        });
      };
    }
    runtime_.mirror->submit(std::move(txn));
  }
  mirror_txn_ = false;
}

void ClientSession::mirror_abandon() {
  if (mirror_settings_) mirror_settings_->clear_pending();
  if (!mirror_txn_) return;
  if (mirror_->unanswered_writes()) {
    runtime_.mirror->in_doubt(route_name(), id_, mirror_->fingerprint());
  }
  mirror_->clear();
  mirror_txn_ = false;
}

asio::awaitable<void> ClientSession::wait_mirror_acks() {
  auto acks = mirror_acks_;
  const auto& m = route_->route->sync.mirror;
  while (acks->pending > 0 && end_reason_ == EndReason::none) {
    acks->timer.expires_after(m.apply_timeout);
    auto [ec] = co_await acks->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (!ec && acks->pending > 0 && m.overflow == config::MirrorOverflow::mark_diverged) {
      // The commit is on the authoritative side; the mirror did not follow in time.
      runtime_.mirror->give_up(route_name(), "a commit waited sync.mirror.apply_timeout_ms (" +
                                                 std::to_string(m.apply_timeout.count()) +
                                                 " ms) for its replay with overflow mark_diverged");
      break;
    }
    // overflow block: the client keeps waiting for its replay.
  }
}

}  // namespace pgshift::proxy
