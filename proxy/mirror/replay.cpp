// RouteMirror::run(): the replay loop of one route on the mirror thread. One connection to
// the other side; the queue's transactions are replayed one at a time, in order, each as it
// ran on the authoritative side, and their results compared (docs/sync.md, "Mirror mode").
#include <pthread.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "pool/message_reader.hpp"
#include "proxy/control/state_store.hpp"
#include "proxy/mirror/mirror_metrics.hpp"
#include "proxy/mirror/route_mirror.hpp"
#include "proxy/runtime/route_select.hpp"
#include "proxy/telemetry/log.hpp"
#include "routing/migration_state.hpp"
#include "wire/byte_order.hpp"
#include "wire/messages.hpp"

namespace pgshift::mirror {

using proxy::f;
using routing::Side;

namespace {

constexpr auto kIdleCheck = std::chrono::milliseconds(200);

bool mirrored_phase(config::Phase p) {
  return p == config::Phase::sync || p == config::Phase::cutover ||
         p == config::Phase::target_primary;
}

std::string_view side_name(Side s) {
  return s == Side::target ? "target" : "source";
}

wire::MessageScanner::TypeSet all_types() {
  wire::MessageScanner::TypeSet t;
  t.set();
  return t;
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
  conn_.reset();
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
  who.startup_params = {{"application_name", "pgshift-mirror"}};
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
    conn_.reset();
    co_return false;
  }
  pool::MessageReader reader(conn_->stream, all_types());
  bool done = false, missing = true;
  std::string error;
  for (;;) {
    pool::BackendMessage m;
    if (co_await reader.next(m)) {
      conn_.reset();
      co_return false;
    }
    if (m.type == 'D' && m.body.size() >= 7) {
      missing = false;
      done = m.body[6] == 't';  // one column: count(2) len(4) value
    } else if (m.type == 'E') {
      wire::ErrorFields ef;
      if (!wire::parse_error_fields(m.body, ef)) error = std::string(ef.message());
    } else if (m.type == 'Z') {
      break;
    }
  }
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
  pool::StartupParams wanted = txn.params ? *txn.params : pool::StartupParams{};
  wanted.emplace_back("application_name", "pgshift-mirror");
  if (!pool::needs_parameter_sync(params_, wanted)) co_return true;
  wire::Bytes q;
  wire::query(q, pool::parameter_sync_statement(params_, wanted));
  if (co_await conn_->stream.write_all(q)) {
    conn_.reset();
    co_return false;
  }
  pool::MessageReader reader(conn_->stream, all_types());
  bool ok = true;
  for (;;) {
    pool::BackendMessage m;
    if (co_await reader.next(m)) {
      conn_.reset();
      co_return false;
    }
    if (m.type == 'E') {
      wire::ErrorFields ef;
      if (!wire::parse_error_fields(m.body, ef)) error = std::string(ef.message());
      ok = false;
    } else if (m.type == 'Z') {
      break;
    }
  }
  if (ok) pool::apply_parameter_sync(params_, wanted);
  co_return ok;
}

asio::awaitable<RouteMirror::Applied> RouteMirror::apply(const proxy::MirrorTxn& txn) {
  Applied a;
  if (!co_await sync_parameters(txn, a.error)) {
    if (conn_) {  // the server refused the client's settings: replayed without them differs
      a.outcome = Outcome::diverged;
      a.error = "the client's settings were refused on the mirror connection: " + a.error;
    }
    co_return a;  // else retry on a new connection
  }
  wire::Bytes out;
  out.reserve(txn.messages.size());
  std::size_t pos = 0;
  const auto& m = txn.messages;
  while (pos + 5 <= m.size()) {
    const std::size_t len = 1 + std::size_t{wire::read_be32(m.data() + pos + 1)};
    std::span<const std::uint8_t> raw(m.data() + pos, std::min(len, m.size() - pos));
    pos += len;
    if (raw[0] == 'P') {
      wire::Parse p;
      if (!wire::parse_parse(raw.subspan(5), p) && !p.statement.empty()) {
        const std::string name(p.statement);
        if (prepared_.contains(name)) {
          prepared_.touch(name);
          continue;  // this connection has it (a name stands for one text and types)
        }
        if (auto victim = prepared_.add(name)) wire::close_statement(out, *victim);
      }
    }
    out.insert(out.end(), raw.begin(), raw.end());
  }
  if (co_await conn_->stream.write_all(out)) {
    a.error = "write to the " + std::string(side_name(conn_side_)) + " failed";
    co_return a;  // retry: nothing of it was answered
  }
  pool::MessageReader reader(conn_->stream, all_types());
  std::uint32_t answers = 0;
  bool failed = false;
  char status = 'I';
  while (answers < txn.answers) {
    pool::BackendMessage msg;
    if (co_await reader.next(msg)) {
      // Lost before the end: after a FATAL (shutdown) the transaction did not commit and is
      // replayed again; without one nobody knows.
      if (a.error.empty()) {
        a.outcome = Outcome::diverged;
        a.error = "in_doubt: the connection to the " + std::string(side_name(conn_side_)) +
                  " was lost before the transaction's end";
      }
      conn_.reset();
      co_return a;
    }
    if (msg.type == 'C') {
      std::string_view tag(reinterpret_cast<const char*>(msg.body.data()), msg.body.size());
      if (!tag.empty() && tag.back() == '\0') tag.remove_suffix(1);
      a.got.emplace_back(tag);
    } else if (msg.type == 'E') {
      wire::ErrorFields ef;
      if (wire::parse_error_fields(msg.body, ef)) continue;
      if (ef.severity() == "FATAL" || ef.severity() == "PANIC") {
        a.outcome = Outcome::retry;
        a.error = std::string(ef.sqlstate()) + " " + std::string(ef.message());
        continue;  // the close follows
      }
      failed = true;
      a.got.push_back("ERROR " + std::string(ef.sqlstate()));
      if (a.error.empty()) a.error = std::string(ef.sqlstate()) + " " + std::string(ef.message());
    } else if (msg.type == 'Z') {
      ++answers;
      if (!msg.body.empty()) status = static_cast<char>(msg.body[0]);
    }
  }
  if (failed || status != 'I') conn_.reset();  // its prepared statements are uncertain
  a.outcome = a.got == txn.outcome && status == 'I' ? Outcome::applied : Outcome::diverged;
  if (a.outcome == Outcome::applied) a.error.clear();
  co_return a;
}

void RouteMirror::finish_front(const Applied& a, const proxy::MirrorTxn& txn) {
  if (a.outcome == Outcome::diverged) {
    const bool in_doubt = a.error.starts_with("in_doubt");
    const bool error = !in_doubt && !a.error.empty();
    record_divergence(txn, in_doubt ? "in_doubt" : error ? "error" : "result", a.got, a.error);
  }
  std::shared_ptr<proxy::MirrorTxn> done;
  {
    std::lock_guard lock(mu_);
    if (!queue_.empty() && queue_.front().get() == &txn) {
      done = std::move(queue_.front());
      queue_.pop_front();
      queue_bytes_ -= std::min<std::uint64_t>(queue_bytes_, done->size());
    }
    if (a.outcome == Outcome::applied) ++applied_;
    lag_seconds_ = queue_.empty() ? 0.0
                                  : std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                                  queue_.front()->committed_at)
                                        .count();
    mirror_metrics().queue_bytes(route_).Set(static_cast<double>(queue_bytes_));
    mirror_metrics().lag_seconds(route_).Set(lag_seconds_);
  }
  if (a.outcome == Outcome::applied) mirror_metrics().applied(route_).Increment();
  if (done && done->done) done->done(a.outcome == Outcome::applied);
}

asio::awaitable<void> RouteMirror::run() {
  // The mirror thread by name, for top -H and perf stat --per-thread (scripts/bench.sh mirror).
  ::pthread_setname_np(::pthread_self(), "pgshift-mirror");
  std::chrono::milliseconds backoff(100);
  for (;;) {
    std::shared_ptr<proxy::MirrorTxn> txn;
    {
      std::lock_guard lock(mu_);
      if (stop_) break;
      proxy::SnapshotPtr snap;
      if (const auto* r = route_config(snap)) {
        max_queue_bytes_ = r->sync.mirror.max_queue_bytes;
        overflow_ = r->sync.mirror.overflow;
      }
      if (!queue_.empty()) txn = queue_.front();
    }
    Side to = Side::target;
    if (!phase_mirrors(to)) {
      reset_for_new_start();
      conn_.reset();
      co_await pause(kIdleCheck);
      continue;
    }
    if (!txn) {
      {
        std::lock_guard lock(mu_);
        lag_seconds_ = 0;
      }
      mirror_metrics().lag_seconds(route_).Set(0);
      // Connect and look at the copy ahead of the first transaction.
      if (co_await ensure_connection(to) && (to == Side::source || co_await copy_done())) {
        set_condition("streaming");
        publish_position();
      }
      co_await pause(kIdleCheck);
      continue;
    }
    if (!co_await ensure_connection(txn->to)) {
      co_await pause(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    if (txn->to == Side::target && !co_await copy_done()) {
      co_await pause(kIdleCheck);
      continue;
    }
    Applied a = co_await apply(*txn);
    if (a.outcome == Outcome::retry) {
      proxy::log_warn("mirror: the replay was interrupted; it runs again on a new connection",
                      {f("route", route_), f("error", a.error)});
      conn_.reset();
      co_await pause(backoff);
      continue;
    }
    set_condition("streaming");
    finish_front(a, *txn);
    publish_position();
  }
  conn_.reset();
}

}  // namespace pgshift::mirror
