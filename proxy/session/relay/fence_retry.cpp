// Stale sidecars (docs/cutover.md "Stale sidecars"): a sidecar that missed a cutover or a
// rollback still routes writes to the side the route left, whose tables carry the fence
// trigger (proxy/migrate/cutover_db.cpp). The server direction recognises the fence's error
// (is_fence_error); when the transaction ran nothing else it drops the error and its
// ReadyForQuery and calls retry_after_fence(), which re-runs the transaction's Query on the
// side the refreshed route state names. A statement-level BEFORE trigger raising means the
// statement did nothing, and a transaction that ran nothing else committed nothing: the
// re-run cannot duplicate a write.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

#include "proxy/control/state_store.hpp"
#include "proxy/session/relay/fence.hpp"
#include "proxy/session/session.hpp"
#include "proxy/telemetry/log.hpp"
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
  asio::steady_timer timer(client_.get_executor());
  const auto deadline = std::chrono::steady_clock::now() + kMovedWait;
  for (;;) {
    auto states = runtime_.states->snapshot();
    const auto* state = states->find(route_name_);
    if (state && routing::authoritative_side(*state) != fenced) co_return true;
    if (std::chrono::steady_clock::now() >= deadline || end_reason_ != EndReason::none) {
      co_return false;
    }
    timer.expires_after(kMovedPoll);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<bool> ClientSession::retry_after_fence() {
  const routing::Side fenced = active_side_;
  wire::Bytes query;
  query.swap(first_query_);
  retrying_ = true;  // the client direction sends nothing meanwhile
  s2c_holds_bytes_ = false;
  const bool moved = co_await wait_route_moved(fenced);
  if (end_reason_ != EndReason::none) {
    retrying_ = false;
    notify_handoff();
    co_return false;
  }
  if (!moved || query.size() < 5) {
    reply_error("40001",
                "pgshift: route " + route_name_ + " moved away from the " +
                    std::string(routing::to_string(fenced)) + "; retry the transaction",
                "The route's side is fenced (a cutover or rollback ran) and this sidecar could "
                "not learn the new state yet. Nothing of the transaction was done.");
    wire::Bytes z;
    wire::ready_for_query(z, 'I');
    queue_local(z);
    log_warn("fence met and the route state still names the fenced side: retryable error",
             {f("session", id_), f("route", route_name_)});
  } else {
    if (server_ && txn_mode_ && !pinned_) {
      while (c2s_writing_ && end_reason_ == EndReason::none) co_await wait_handoff();
      if (server_ && tracker_.idle()) release_active();
    }
    log_info("fence met: the transaction's first statement runs again on the new side",
             {f("session", id_), f("route", route_name_), f("fenced", routing::to_string(fenced))});
    const std::span<const std::uint8_t> raw(query);
    co_await on_client_message('Q', raw.subspan(5), raw);
    co_await flush_to_server();
  }
  retrying_ = false;
  notify_handoff();
  co_return end_reason_ == EndReason::none;
}

}  // namespace pgshift::proxy
