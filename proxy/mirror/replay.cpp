// RouteMirror::run(): the replay loop of one route on the mirror thread. One connection to
// the other side; the queue's transactions are replayed in order, each as it ran on the
// authoritative side and as its own transaction, pipelined: written back to back (a write
// beside the reads) and their answers read in bulk and compared one transaction at a time
// (docs/sync.md, "Mirror mode" and "How the replay is pipelined").
#include <pthread.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "proxy/control/state_store.hpp"
#include "proxy/mirror/mirror_metrics.hpp"
#include "proxy/mirror/route_mirror.hpp"
#include "proxy/runtime/route_select.hpp"
#include "proxy/telemetry/log.hpp"
#include "routing/migration_state.hpp"
#include "wire/byte_order.hpp"
#include "wire/message_types.hpp"
#include "wire/messages.hpp"

namespace pgshift::mirror {

using proxy::f;
using routing::Side;
namespace be = wire::be;

namespace {

constexpr auto kIdleCheck = std::chrono::milliseconds(200);
// Sent and not answered at most: bounds what a lost connection leaves in doubt and the
// memory of one write; enough to keep the other side busy between two reads.
constexpr std::size_t kMaxInFlight = 64;
constexpr std::size_t kMaxInFlightBytes = 256 * 1024;
// ack async: how long the answers of what was just sent (and the commits queued behind it)
// gather before the replay reads them. The server answers each transaction as it finishes;
// read at once, every answer and every commit would wake the mirror thread (two wake-ups
// per transaction, which took CPU from the I/O threads). At most this much more lag; a
// client waiting on the replay (ack sync) never waits for it.
constexpr auto kGatherWindow = std::chrono::milliseconds(1);

bool mirrored_phase(config::Phase p) {
  return p == config::Phase::sync || p == config::Phase::cutover ||
         p == config::Phase::target_primary;
}

std::string_view side_name(Side s) {
  return s == Side::target ? "target" : "source";
}

// A value inside the startup packet's `options`: spaces and backslashes escaped.
std::string options_escape(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == ' ' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Joined statements run under one statement_timeout (replay_batch.hpp, join_transaction()):
// a client that set one keeps its statements apart.
bool sets_statement_timeout(const pool::StartupParams* params) {
  if (!params) return false;
  for (const auto& [name, value] : *params) {
    if (name.find("statement_timeout") != std::string::npos ||
        value.find("statement_timeout") != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

asio::awaitable<void> RouteMirror::pause(std::chrono::milliseconds d) {
  wake_.expires_after(d);
  co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
}

bool RouteMirror::phase_mirrors(Side& to) const {
  if (!runtime_.states) return false;
  auto states = runtime_.states->snapshot();
  const auto* s = states->find(route_);
  if (!s || !mirrored_phase(s->phase)) return false;
  to = routing::authoritative_side(*s) == Side::source ? Side::target : Side::source;
  return true;
}

asio::awaitable<bool> RouteMirror::ensure_connection(Side to) {
  if (conn_ && conn_side_ == to) co_return true;
  co_await drop_connection();
  proxy::SnapshotPtr snap;
  const config::Route* route = route_config(snap);
  if (!route || !route->target) co_return false;
  const proxy::RouteRuntime* rr = nullptr;
  for (const auto& r : snap->routes) {
    if (r.route == route) rr = &r;
  }
  const config::Upstream& up = to == Side::target ? *route->target : route->source;
  proxy::ClientIdentity who;
  who.database = route->client_database;
  // The fence of a side the route left lets this connection through
  // (migrate/cutover_db.cpp): the mirror replays the authoritative side's writes there.
  who.startup_params = {{"application_name", "pgshift-mirror"},
                        {"options", "-c pgshift.mirror_replay=" + options_escape(route_)}};
  std::string error;
  auto params = proxy::make_upstream_params(
      up, rr ? (to == Side::target ? rr->target_tls : rr->source_tls) : nullptr, who, error);
  if (!params) {
    set_condition("failed", "the mirror cannot log in to the " + std::string(side_name(to)) + ": " +
                                error + " (set a fixed user and password on it)");
    co_return false;
  }
  pool::ConnectError cerr;
  auto conn = co_await pool::connect_upstream(*params, cerr);
  if (!conn) {
    set_condition(std::string(side_name(to)) + "_unreachable",
                  "the mirror cannot connect to the " + std::string(side_name(to)) + " (" +
                      params->host + ":" + std::to_string(params->port) + "): " + cerr.message +
                      "; transactions wait in the queue");
    co_return false;
  }
  co_await drop_connection();  // nothing is in flight here (run())
  conn_ = std::move(conn);
  conn_side_ = to;
  prepared_.clear();
  params_ = {};
  params_.defaults = params_.current = {{"application_name", "pgshift-mirror"}};
  proxy::log_info("mirror connected", {f("route", route_), f("to", side_name(to))});
  co_return true;
}

// The initial copy of `sync start` is recorded in pgshift.mirror_copies on the target
// (migrate/mirror_start.cpp); transactions are replayed only after it.
asio::awaitable<bool> RouteMirror::copy_done() {
  if (copied_) co_return true;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_copy_check_) co_return false;
  next_copy_check_ = now + kIdleCheck;
  wire::Bytes q;
  std::string route_literal = "'";
  for (char c : route_) route_literal += c == '\'' ? std::string("''") : std::string(1, c);
  route_literal += "'";
  wire::query(
      q, "SELECT copied_at IS NOT NULL FROM pgshift.mirror_copies WHERE route = " + route_literal);
  if (co_await conn_->stream.write_all(q)) {
    co_await drop_connection();
    co_return false;
  }
  reader_.set_wanted(wire::type_set(
      {be::command_complete, be::data_row, be::error_response, be::ready_for_query}));
  bool done = false, missing = true;
  std::string error;
  for (;;) {
    pool::BackendMessage m;
    if (co_await reader_.next(conn_->stream, m)) {
      co_await drop_connection();
      co_return false;
    }
    if (m.type == be::data_row && m.body.size() >= 7) {
      missing = false;
      done = m.body[6] == 't';  // one column: count(2) len(4) value
    } else if (m.type == be::error_response) {
      wire::ErrorFields ef;
      if (!wire::parse_error_fields(m.body, ef)) error = std::string(ef.message());
    } else if (m.type == be::ready_for_query) {
      break;
    }
  }
  reader_.set_wanted(
      wire::type_set({be::command_complete, be::error_response, be::ready_for_query}));
  if (done) {
    copied_ = true;
    proxy::log_info("mirror: initial copy done, replaying the queue", {f("route", route_)});
    co_return true;
  }
  set_condition("copying", missing || !error.empty()
                               ? "waiting for the initial copy of pgshift sync start (none is "
                                 "recorded in pgshift.mirror_copies on the target yet)"
                               : "the initial copy is running; transactions wait in the queue");
  co_return false;
}

asio::awaitable<bool> RouteMirror::sync_parameters(const proxy::MirrorTxn& txn,
                                                   std::string& error) {
  if (params_match(txn)) co_return true;  // the connection has them (the common case)
  pool::StartupParams wanted = txn.params ? *txn.params : pool::StartupParams{};
  wanted.emplace_back("application_name", "pgshift-mirror");
  // A replayed SET left the connection in a state nobody tracked: RESET ALL brings it back to
  // its own defaults (application_name and options included), then the wanted ones are set.
  const bool reset = settings_dirty_;
  pool::ParameterState state = params_;
  if (reset) state.reset();
  if (!reset && !pool::needs_parameter_sync(state, wanted)) {
    synced_params_ = txn.params;
    co_return true;
  }
  std::string sql = reset ? "RESET ALL" : "";
  if (pool::needs_parameter_sync(state, wanted)) {
    if (!sql.empty()) sql += "; ";
    sql += pool::parameter_sync_statement(state, wanted);
  }
  wire::Bytes q;
  wire::query(q, sql);
  if (co_await conn_->stream.write_all(q)) {
    co_await drop_connection();
    co_return false;
  }
  bool ok = true;
  for (;;) {
    pool::BackendMessage m;
    if (co_await reader_.next(conn_->stream, m)) {
      co_await drop_connection();
      co_return false;
    }
    if (m.type == be::error_response) {
      wire::ErrorFields ef;
      if (!wire::parse_error_fields(m.body, ef)) error = std::string(ef.message());
      ok = false;
    } else if (m.type == be::ready_for_query) {
      break;
    }
  }
  if (ok) {
    if (reset) params_.reset();
    settings_dirty_ = false;
    pool::apply_parameter_sync(params_, wanted);
    synced_params_ = txn.params;
  }
  co_return ok;
}

asio::awaitable<bool> RouteMirror::prepare_front(const std::shared_ptr<proxy::MirrorTxn>& txn,
                                                 Side to, std::chrono::milliseconds& backoff) {
  if (!txn) {
    {
      std::lock_guard lock(mu_);
      lag_seconds_ = 0;
    }
    lag_gauge_.Set(0);
    // Connect and look at the copy ahead of the first transaction.
    if (co_await ensure_connection(to) && (to == Side::source || co_await copy_done())) {
      set_condition("streaming");
      publish_position();
    }
    bool sleep = false;
    {
      std::lock_guard lock(mu_);
      sleep = sleeping_ = queue_.empty() && !stop_;
    }
    if (sleep) co_await pause(kIdleCheck);
    std::lock_guard lock(mu_);
    sleeping_ = false;
    co_return false;
  }
  if (txn->to != to) {
    // The route moved (a cutover or rollback) after this transaction committed and before it
    // was replayed: the side it was meant for is authoritative now, and replaying it there
    // could overwrite newer writes. Never replayed; journaled for verify to settle. (The
    // fleet barrier waits for empty queues, so only a member that missed the hold gets here.)
    Applied a;
    a.outcome = Outcome::diverged;
    a.error = "stale: the route moved to the " + std::string(side_name(to)) +
              " before this transaction was replayed there";
    completed_.emplace_back(std::move(a), txn);
    finish_completed();
    co_return false;
  }
  if (!co_await ensure_connection(txn->to)) {
    co_await pause(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    co_return false;
  }
  backoff = std::chrono::milliseconds(100);
  if (txn->to == Side::target && !co_await copy_done()) {
    co_await pause(kIdleCheck);
    co_return false;
  }
  std::string error;
  if (co_await sync_parameters(*txn, error)) co_return true;
  if (conn_) {  // the server refused the client's settings: replayed without them differs
    Applied a;
    a.outcome = Outcome::diverged;
    a.error = "the client's settings were refused on the mirror connection: " + error;
    completed_.emplace_back(std::move(a), txn);
    finish_completed();
    publish_position();
  } else {
    proxy::log_warn(
        "mirror: the connection was lost while setting the client's parameters; "
        "the replay runs again on a new connection",
        {f("route", route_)});
    co_await pause(backoff);
  }
  co_return false;
}

bool RouteMirror::params_match(const proxy::MirrorTxn& txn) const {
  if (settings_dirty_) return false;
  if (txn.params == synced_params_) return true;
  const auto empty = [](const auto& p) { return !p || p->empty(); };
  if (empty(txn.params) || empty(synced_params_)) return empty(txn.params) && empty(synced_params_);
  return *txn.params == *synced_params_;
}

void RouteMirror::fill_pipeline() {
  out_.clear();
  // The candidates behind what is in flight, taken under one lock (the sessions' submit()
  // takes it too): not one lock per transaction sent.
  candidates_.clear();
  {
    std::lock_guard lock(mu_);
    const std::size_t i = in_flight_.size();
    // The queue was emptied under the replay (mark_diverged): nothing more until it drained.
    if (i > 0 && (i > queue_.size() || queue_[i - 1] != in_flight_.back().txn)) return;
    for (std::size_t k = i; k < queue_.size() && k < kMaxInFlight; ++k) {
      candidates_.push_back(queue_[k]);
    }
  }
  for (auto& candidate : candidates_) {
    if (in_flight_.size() >= kMaxInFlight || in_flight_bytes_ >= kMaxInFlightBytes) break;
    // The last one may leave a block open on replay: the next waits for its answer.
    if (!in_flight_.empty() && !in_flight_.back().ends_idle) break;
    std::shared_ptr<proxy::MirrorTxn> next = std::move(candidate);
    // Anything that needs a round trip first (connection side, copy, parameters) waits
    // until nothing is in flight (run()).
    if (!next || next->to != conn_side_ || (next->to == Side::target && !copied_) ||
        !params_match(*next)) {
      break;
    }
    InFlight f;
    std::span<const std::uint8_t> messages = next->messages;
    joined_.clear();
    if (next->joinable && !sets_statement_timeout(next->params.get()) &&
        join_transaction(messages, joined_)) {
      f.joined = true;
      messages = joined_;
    }
    if (!append_replay(messages, prepared_, pending_statements_, out_, f.introduced)) break;
    pending_statements_.insert(f.introduced.begin(), f.introduced.end());
    f.ends_idle = f.joined || ends_idle(next->messages);
    f.txn = std::move(next);
    in_flight_bytes_ += f.txn->messages.size();
    // Its SETs change the connection for what follows: reset before the next (params_match).
    if (f.txn->changes_settings) settings_dirty_ = true;
    in_flight_.push_back(std::move(f));
  }
  candidates_.clear();
  if (out_.empty()) return;
  std::swap(out_, sending_);
  writing_ = true;
  asio::co_spawn(wake_.get_executor(), write_pipeline(conn_.get()), asio::detached);
}

// Writes run beside the reads: a server blocked on answers we do not read would stop
// reading our requests.
asio::awaitable<void> RouteMirror::write_pipeline(pool::ServerConnection* conn) {
  // A failed write is not acted on here: the reads see the server's FATAL or the close.
  co_await conn->stream.write_all(sending_);
  writing_ = false;
  write_done_.cancel();
}

asio::awaitable<void> RouteMirror::writer_idle(bool close) {
  while (writing_) {
    if (close && conn_) conn_->stream.close();
    write_done_.expires_at(std::chrono::steady_clock::time_point::max());
    co_await write_done_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

asio::awaitable<void> RouteMirror::drop_connection() {
  co_await writer_idle(true);
  conn_.reset();
  in_flight_.clear();
  in_flight_bytes_ = 0;
  pending_statements_.clear();
  reader_.reset();
  reset_after_drain_ = false;
  synced_params_.reset();
  settings_dirty_ = false;
}

bool RouteMirror::on_answer(const pool::BackendMessage& m) {
  InFlight& f = in_flight_.front();
  if (m.type == be::command_complete) {
    std::string_view tag(reinterpret_cast<const char*>(m.body.data()), m.body.size());
    if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
    f.result.got.emplace_back(tag);
  } else if (m.type == be::error_response) {
    wire::ErrorFields ef;
    if (wire::parse_error_fields(m.body, ef)) return false;
    if (ef.severity() == "FATAL" || ef.severity() == "PANIC") {
      // The server ends the connection: this transaction and the ones behind it are rolled
      // back or never read, and run again on a new connection (lose_connection()).
      f.fatal = true;
      f.result.error = std::string(ef.sqlstate()) + " " + std::string(ef.message());
      return false;
    }
    f.failed = true;
    f.result.got.push_back("ERROR " + std::string(ef.sqlstate()));
    if (f.result.error.empty()) {
      f.result.error = std::string(ef.sqlstate()) + " " + std::string(ef.message());
    }
  } else if (m.type == be::ready_for_query) {
    ++f.answers;
    if (!m.body.empty()) f.status = static_cast<char>(m.body[0]);
    if (f.answers >= (f.joined ? 1u : f.txn->answers)) {
      complete_front();
      return true;
    }
  }
  return false;
}

void RouteMirror::complete_front() {
  InFlight done = std::move(in_flight_.front());
  in_flight_.pop_front();
  in_flight_bytes_ -= std::min(in_flight_bytes_, done.txn->messages.size());
  Applied& a = done.result;
  if (done.joined) {
    // What its BEGIN and COMMIT, sent apart, would have answered around these.
    a.got.insert(a.got.begin(), "BEGIN");
    a.got.emplace_back(done.failed ? "ROLLBACK" : "COMMIT");
  }
  const bool idle = done.status == wire::txn_status::idle;
  a.outcome = a.got == done.txn->outcome && idle ? Outcome::applied : Outcome::diverged;
  if (a.outcome == Outcome::applied) a.error.clear();
  if (!done.failed) {
    for (const auto& n : done.introduced) pending_statements_.erase(n);
  }
  if (in_flight_.empty()) pending_statements_.clear();  // nothing unanswered is left
  // Its prepared statements are uncertain: nothing more is sent, and the connection is
  // replaced once the transactions already sent are answered (each is its own transaction).
  if (done.failed || !idle) reset_after_drain_ = true;
  completed_.emplace_back(std::move(a), std::move(done.txn));
  if (!idle && !in_flight_.empty()) {
    // ends_idle() said this cannot happen: the ones behind it ran inside the block it left
    // open, so nobody knows what they did.
    proxy::log_error(
        "mirror: a replayed transaction left a transaction block open with more "
        "sent behind it; those are recorded in doubt",
        {f("route", route_), f("in_flight", in_flight_.size())});
    for (auto& rest : in_flight_) {
      Applied d;
      d.outcome = Outcome::diverged;
      d.got = std::move(rest.result.got);
      d.error = "in_doubt: sent behind a transaction whose replay left a block open";
      completed_.emplace_back(std::move(d), std::move(rest.txn));
    }
    in_flight_.clear();
    in_flight_bytes_ = 0;
    reset_after_drain_ = true;
  }
}

asio::awaitable<void> RouteMirror::lose_connection() {
  const bool fatal = !in_flight_.empty() && in_flight_.front().fatal;
  if (fatal) {
    // Rolled back by the server: they stay queued and run again, from the first one.
    proxy::log_warn("mirror: the replay was interrupted; it runs again on a new connection",
                    {f("route", route_), f("transactions", in_flight_.size()),
                     f("error", in_flight_.front().result.error)});
  } else {
    // Lost without the server saying why: whether they committed is not known.
    for (auto& rest : in_flight_) {
      Applied d;
      d.outcome = Outcome::diverged;
      d.got = std::move(rest.result.got);
      d.error = "in_doubt: the connection to the " + std::string(side_name(conn_side_)) +
                " was lost before the transaction's end";
      completed_.emplace_back(std::move(d), std::move(rest.txn));
    }
  }
  in_flight_.clear();
  finish_completed();
  co_await drop_connection();
  if (fatal) co_await pause(std::chrono::milliseconds(100));
}

asio::awaitable<void> RouteMirror::read_answers() {
  bool progressed = false;
  while (!in_flight_.empty()) {
    pool::BackendMessage m;
    const auto next = reader_.next_buffered(m);
    if (next == AnswerReader::Next::message) {
      progressed = on_answer(m) || progressed;
      continue;
    }
    if (next == AnswerReader::Next::error) {
      co_await lose_connection();
      co_return;
    }
    if (progressed) break;  // all that came is handled: send more before waiting again
    if (co_await reader_.read_more(conn_->stream)) {
      co_await lose_connection();
      co_return;
    }
  }
  finish_completed();
  set_condition("streaming");
  publish_position();
}

void RouteMirror::finish_completed() {
  if (completed_.empty()) return;
  std::uint64_t applied = 0;
  for (const auto& [a, txn] : completed_) {
    if (a.outcome == Outcome::applied) {
      ++applied;
    } else {
      const bool in_doubt = a.error.starts_with("in_doubt");
      const bool stale = a.error.starts_with("stale");
      const bool error = !in_doubt && !stale && !a.error.empty();
      record_divergence(*txn,
                        in_doubt ? "in_doubt"
                        : stale  ? "stale"
                        : error  ? "error"
                                 : "result",
                        a.got, a.error);
    }
  }
  std::vector<std::pair<std::function<void(bool)>, bool>> dones;
  {
    std::lock_guard lock(mu_);
    for (auto& [a, txn] : completed_) {
      if (queue_.empty() || queue_.front() != txn) continue;  // emptied by mark_diverged
      queue_.pop_front();
      queue_bytes_ -= std::min<std::uint64_t>(queue_bytes_, txn->size());
      if (txn->done) dones.emplace_back(std::move(txn->done), a.outcome == Outcome::applied);
    }
    applied_ += applied;
    lag_seconds_ = queue_.empty() ? 0.0
                                  : std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                                  queue_.front()->committed_at)
                                        .count();
    queue_gauge_.Set(static_cast<double>(queue_bytes_));
    lag_gauge_.Set(lag_seconds_);
    publish_flags_locked();
  }
  if (applied > 0) applied_counter_.Increment(static_cast<double>(applied));
  completed_.clear();
  for (auto& [done, ok] : dones) done(ok);
  wake_room_waiters();
}

asio::awaitable<void> RouteMirror::run() {
  // The mirror thread by name, for top -H and perf stat --per-thread (scripts/bench.sh mirror).
  ::pthread_setname_np(::pthread_self(), "pgshift-mirror");
  std::chrono::milliseconds backoff(100);
  for (;;) {
    refill();  // the spool's oldest transactions, once the memory queue has room (and wakes
               // the sessions waiting for room: also after a reload raised the bound)
    std::shared_ptr<proxy::MirrorTxn> txn;
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      proxy::SnapshotPtr snap;
      if (const auto* r = route_config(snap)) {
        max_queue_bytes_ = r->sync.mirror.max_queue_bytes;
        overflow_ = r->sync.mirror.overflow;
        ack_ = r->sync.mirror.ack;
        publish_flags_locked();
      }
      if (!queue_.empty()) txn = queue_.front();
    }
    Side to = Side::target;
    if (!phase_mirrors(to)) {
      co_await drop_connection();
      reset_for_new_start();
      wake_room_waiters();
      co_await pause(kIdleCheck);
      continue;
    }
    if (in_flight_.empty()) {
      co_await writer_idle(false);
      if (reset_after_drain_) co_await drop_connection();
      if (!co_await prepare_front(txn, to, backoff)) continue;
    }
    if (!writing_ && !reset_after_drain_) fill_pipeline();
    if (in_flight_.empty()) {
      co_await pause(kIdleCheck);  // the front could not be sent (the queue changed under it)
      continue;
    }
    if (ack_ == config::MirrorAck::async) co_await pause(kGatherWindow);
    co_await read_answers();
  }
  co_await drop_connection();
}

}  // namespace pgshift::mirror
