// Stale sidecars (docs/cutover.md "Stale sidecars"): a sidecar that missed a cutover or a
// rollback still routes writes to the side the route left, whose tables carry the fence
// trigger (proxy/migrate/cutover_db.cpp). The server direction recognises the fence's error
// (is_fence_error). When the transaction ran nothing but harmless statements (RerunLog: BEGIN,
// SET LOCAL, SAVEPOINT, protocol bookkeeping) and nothing was sent after the fenced message,
// it drops the error and everything up to its ReadyForQuery and calls retry_after_fence():
// once the refreshed route state names another side, the old side's failed transaction is
// rolled back (an explicit BEGIN), and the logged messages run again on the new side through
// on_client_message(), so routing, the pause gate and the StatementMapper (which prepares the
// client's named statements on the new server) apply as for any transaction. The answers the
// client already has are dropped from the re-run's. A statement-level BEFORE trigger raising
// means the statement did nothing, and a transaction that ran nothing else changed nothing:
// the re-run cannot duplicate a write.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "proxy/control/state_store.hpp"
#include "proxy/session/clock.hpp"
#include "proxy/session/relay/fence.hpp"
#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/byte_order.hpp"
#include "wire/messages.hpp"

namespace pgshift::proxy {

namespace {
constexpr std::string_view kPrefix = "pgshift: route ";
constexpr std::string_view kMovedTo = " moved to the ";
constexpr std::string_view kSuffix = " database; writes here are fenced";
// How long a session waits for the state store to show the route moved (the PostgreSQL
// store re-reads within one turn of its thread, about 50 ms; the file store at once).
constexpr auto kMovedWait = std::chrono::milliseconds(1500);
constexpr auto kMovedPoll = std::chrono::milliseconds(10);
}  // namespace

bool is_fence_error(const wire::ErrorFields& ef) {
  const std::string_view m = ef.message();
  return ef.sqlstate() == "25006" && m.starts_with(kPrefix) && m.ends_with(kSuffix) &&
         m.find(kMovedTo) != std::string_view::npos;
}

std::string fence_moved_error(const wire::ErrorFields& ef, std::string_view route) {
  std::string_view m = ef.message();
  m.remove_suffix(kSuffix.size());
  const std::string_view side = m.substr(m.find(kMovedTo) + kMovedTo.size());
  return "pgshift: route " + std::string(route) + " moved to the " + std::string(side) +
         " during this transaction; retry it";
}

asio::awaitable<bool> ClientSession::wait_route_moved(routing::Side fenced) {
  if (!runtime_.states) co_return false;
  runtime_.states->refresh_soon();
  auto moved = [this, fenced] {
    auto states = runtime_.states->snapshot();
    const auto* state = states->find(route_name());
    return state && routing::authoritative_side(*state) != fenced;
  };
  auto ended = [this] { return end_reason_ != EndReason::none; };
  co_return co_await poll_until(client_.get_executor(), moved, ended, kMovedPoll, kMovedWait);
}

bool ClientSession::fence_rerunnable() const {
  return !fence_dropping() && rs_ && rs_->rerun.rerunnable() && !pinned_ && runtime_.states &&
         tracker_.outstanding() == 1 && !tracker_.unsynced();
}

bool ClientSession::rerun_track(std::uint8_t type, std::span<const std::uint8_t> body, bool keep) {
  if (fence_dropping()) return false;  // the fenced side's answers: the re-run answers instead
  if (!keep || !rs_ || !route_->route->target) return keep;
  RerunLog& log = rs_->rerun;
  switch (log.rerun_answer(type)) {
    case RerunLog::Verdict::forward:
      break;
    case RerunLog::Verdict::drop:
      keep = false;
      break;
    case RerunLog::Verdict::mismatch:
      log_warn("fence re-run: the new side answered differently from the old side",
               {f("session", id_), f("route", route_name()),
                f("type", std::string(1, static_cast<char>(type)))});
      end(EndReason::server_protocol_error,
          "pgshift: route " + route_name() +
              " moved and the transaction ran again there, but the new side answered it "
              "differently; reconnect and retry the transaction");
      return false;
  }
  log.answer(type, body);
  return keep;
}

asio::awaitable<bool> ClientSession::retry_after_fence() {
  s2c_to(S2c::running);
  if (fence_ != Fence::rolling_back) {
    const routing::Side fenced = active_side_;
    const bool moved = co_await wait_route_moved(fenced);
    if (end_reason_ != EndReason::none) {
      fence_to(Fence::none);
      notify_handoff();
      co_return false;
    }
    if (!moved) {
      fence_to(Fence::none);
      rs().rerun.clear();
      reply_error("40001",
                  "pgshift: route " + route_name() + " moved away from the " +
                      std::string(routing::to_string(fenced)) + "; retry the transaction",
                  "The route's side is fenced (a cutover or rollback ran) and this sidecar could "
                  "not learn the new state yet. Nothing of the transaction was done.");
      wire::Bytes z;
      wire::ready_for_query(z, tracker_.status());  // 'E' inside BEGIN: the client rolls back
      queue_local(z);
      log_warn("fence met and the route state still names the fenced side: retryable error",
               {f("session", id_), f("route", route_name())});
      notify_handoff();
      co_return true;
    }
    if (server_ && tracker_.status() != wire::txn_status::idle) {
      // The old side holds the failed transaction (an explicit BEGIN): rolled back first, its
      // answers dropped like the fence error's; this runs again at its ReadyForQuery.
      while (writing_to_server_ && end_reason_ == EndReason::none) co_await wait_handoff();
      fence_to(Fence::rolling_back);
      wire::Bytes q;
      wire::query(q, "ROLLBACK");
      const std::span<const std::uint8_t> raw(q);
      forward(wire::fe::query, raw.subspan(5), raw);
      co_await flush_to_server();
      co_return end_reason_ == EndReason::none;
    }
  }
  fence_to(Fence::rerunning);
  if (server_ && txn_mode_ && !pinned_) {
    while (writing_to_server_ && end_reason_ == EndReason::none) co_await wait_handoff();
    if (server_ && tracker_.idle()) release_active();
  }
  log_info("fence met: the transaction runs again on the new side",
           {f("session", id_), f("route", route_name())});
  co_await rerun_messages();
  fence_to(Fence::none);
  notify_handoff();
  co_return end_reason_ == EndReason::none;
}

// Feeds the logged messages to on_client_message() as if the client sent them again.
asio::awaitable<void> ClientSession::rerun_messages() {
  const wire::Bytes held = rs().rerun.take_for_rerun();
  const std::size_t local_before = local_out_.size();
  for (std::size_t pos = 0; pos + 5 <= held.size() && end_reason_ == EndReason::none;) {
    const std::size_t size = 1 + std::size_t{wire::read_be32(held.data() + pos + 1)};
    const std::span<const std::uint8_t> raw(held.data() + pos, size);
    pos += size;
    co_await on_client_message(raw[0], raw.subspan(5), raw);
    if (local_out_.size() == local_before) continue;
    // The proxy answered instead of a server (the new side unreachable, a hold past
    // query_wait_timeout_ms). Only the message that routes the transaction can fail that
    // way, before anything reached a server: that answer is the client's whole answer.
    rs().rerun.stop_dropping();
    rs().rerun.clear();
    if (skip_until_sync_) {
      skip_until_sync_ = false;
      wire::Bytes z;
      wire::ready_for_query(z, tracker_.status());
      queue_local(z);
    }
    if (tracker_.outstanding() > 0 || tracker_.unsynced()) {
      end(EndReason::server_closed, "the fenced transaction could not run again on the new side");
    }
    break;
  }
  co_await flush_to_server();
}

}  // namespace pgshift::proxy
