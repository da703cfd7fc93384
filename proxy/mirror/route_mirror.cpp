// RouteMirror: queue, overflow policy and status (this file); the replay loop is in
// replay.cpp.
#include "proxy/mirror/route_mirror.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>

#include "proxy/mirror/mirror_metrics.hpp"
#include "proxy/telemetry/log.hpp"
#include "wire/message_types.hpp"

namespace pgshift::mirror {

using proxy::f;

namespace {
std::string hex(const wire::Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (auto c : b) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}
}  // namespace

RouteMirror::RouteMirror(proxy::Runtime& runtime, std::string route, asio::any_io_executor executor,
                         std::shared_ptr<Journal> journal)
    : runtime_(runtime),
      route_(std::move(route)),
      wake_(executor),
      journal_(std::move(journal)),
      queue_gauge_(mirror_metrics().queue_bytes(route_)),
      lag_gauge_(mirror_metrics().lag_seconds(route_)),
      applied_counter_(mirror_metrics().applied(route_)),
      reader_(wire::type_set(
          {wire::be::command_complete, wire::be::error_response, wire::be::ready_for_query})),
      write_done_(executor) {
  auto snap = runtime_.snapshot();
  if (const auto* r = route_config(snap)) {
    max_queue_bytes_ = r->sync.mirror.max_queue_bytes;
    overflow_ = r->sync.mirror.overflow;
    spool_dir_ = r->sync.mirror.spool_dir;
    max_spool_bytes_ = r->sync.mirror.max_spool_bytes;
  }
  std::lock_guard lock(mu_);
  publish_flags_locked();
}

const config::Route* RouteMirror::route_config(proxy::SnapshotPtr& snap) const {
  snap = runtime_.snapshot();
  return snap->config->find_route(route_);
}

bool RouteMirror::room_locked() const {
  if (stopped_ || overflow_ != config::MirrorOverflow::block) return true;
  return !spool_dir_.empty() && !spool_failed_ ? spool_.txn_bytes() < max_spool_bytes_
                                               : queue_bytes_ < max_queue_bytes_;
}

void RouteMirror::publish_flags_locked() {
  room_flag_.store(room_locked(), std::memory_order_relaxed);
  mirroring_flag_.store(!stopped_, std::memory_order_relaxed);
}

// Both are read at the start of every mirrored transaction, on every I/O thread: atomics
// published under mu_ by whatever changes them, not a lock the mirror thread also takes.
// A stale answer admits one transaction past the bound, as a check before submit() always
// could; the wait itself (wait_for_room) looks again under the lock.
bool RouteMirror::has_room() const {
  return room_flag_.load(std::memory_order_relaxed);
}

// No lost wakeup: a session looks at the room and registers in one step under mu_. Whatever
// makes room changes the queue under mu_ first and calls wake_room_waiters() after, which
// takes mu_ again: a session that registered before the change is in the list it takes; one
// that looked after the change saw the room and did not register. The session's side of the
// ordering (the wakeup posted before its wait began) is in mirror_tap.cpp.
bool RouteMirror::wait_for_room(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  if (room_locked()) return true;
  room_waiters_.push_back(std::move(wake));
  room_waiting_.store(room_waiters_.size(), std::memory_order_relaxed);
  return false;
}

void RouteMirror::wake_room_waiters() {
  // Read without the lock: a registration made before the caller's last change under mu_
  // is visible here (the mutex orders them); one made after it saw the room.
  if (room_waiting_.load(std::memory_order_relaxed) == 0) return;
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    if (room_waiters_.empty() || !room_locked()) return;
    waiters.swap(room_waiters_);
    room_waiting_.store(0, std::memory_order_relaxed);
  }
  for (auto& w : waiters) w();
}

bool RouteMirror::mirroring() const {
  return mirroring_flag_.load(std::memory_order_relaxed);
}

std::vector<std::function<void(bool)>> RouteMirror::stop_diverged(std::string why,
                                                                  std::uint64_t extra) {
  std::vector<std::function<void(bool)>> dones;
  stopped_ = diverged_ = true;
  ++divergences_;
  const std::uint64_t dropped = queue_.size() + spool_.count() + extra;
  for (auto& q : queue_) {
    if (q->done) dones.push_back(std::move(q->done));
  }
  for (auto& d : spool_.clear()) dones.push_back(std::move(d));
  mirror_metrics().spool_bytes(route_).Set(0);
  queue_.clear();
  queue_bytes_ = 0;
  condition_ = "diverged";
  detail_ = why + "; " + std::to_string(dropped) +
            " transactions were not replayed. Run pgshift sync stop and sync start again to "
            "copy the target afresh.";
  last_divergence_ = detail_;
  last_divergence_unix_ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  mirror_metrics().divergences(route_, "overflow").Increment();
  mirror_metrics().queue_bytes(route_).Set(0);
  proxy::log_error("mirror stopped: route marked diverged",
                   {f("route", route_), f("why", why), f("not_replayed", dropped),
                    f("fix", "pgshift sync stop, then pgshift sync start")});
  boost::json::object e;
  e["route"] = route_;
  e["kind"] = "overflow";
  e["not_replayed"] = dropped;
  e["detail"] = detail_;
  journal_->write(e);
  publish_flags_locked();
  return dones;
}

void RouteMirror::mark_diverged(std::string_view why) {
  std::vector<std::function<void(bool)>> dones;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    dones = stop_diverged(std::string(why), 0);
  }
  for (auto& d : dones) d(false);
  wake_room_waiters();  // stopped: nothing waits for room any more
}

void RouteMirror::submit(std::shared_ptr<proxy::MirrorTxn> txn) {
  std::function<void(bool)> refused;
  std::vector<std::function<void(bool)>> dones;
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopped_) {
      refused = std::move(txn->done);
    } else if (spills_locked(txn->size())) {
      spool_locked(std::move(txn), refused, dones);
      wake = std::exchange(sleeping_, false);
    } else if (overflow_ == config::MirrorOverflow::mark_diverged &&
               queue_bytes_ + txn->size() > max_queue_bytes_) {
      // Never a silent drop: the route is marked diverged and stops mirroring; the operator
      // starts the mirror again (sync start), which copies everything afresh.
      refused = std::move(txn->done);
      dones = stop_diverged("the mirror queue passed sync.mirror.max_queue_bytes (" +
                                std::to_string(max_queue_bytes_) +
                                " bytes) with overflow mark_diverged",
                            1);
    } else {
      // Stamped under the lock, so the queue is in stamp order: everything acknowledged
      // before the front's stamp has been replayed (publish_position()).
      txn->committed_at = std::chrono::steady_clock::now();
      queue_bytes_ += txn->size();
      ++submitted_;
      queue_.push_back(std::move(txn));
      queue_gauge_.Set(static_cast<double>(queue_bytes_));
      wake = std::exchange(sleeping_, false);
    }
    publish_flags_locked();
  }
  for (auto& d : dones) d(false);
  if (refused) {
    refused(false);
    wake_room_waiters();  // marked diverged: nothing waits for room any more
    return;
  }
  // Only a replay loop that waits for work is woken (one post per idle period, not one per
  // transaction); a busy one takes the transaction when it next looks at the queue. The
  // loop runs on the timer's executor: the cancel runs after it began to wait.
  if (wake) asio::post(wake_.get_executor(), [this] { wake_.cancel(); });
}

void RouteMirror::note_unsafe(std::string_view reason, std::string_view statement) {
  // On the I/O threads, for every flagged statement: the series is looked up once per reason
  // (Family::Add builds labels under a lock), and nothing is allocated once it was logged.
  const auto r = routing::mirror_unsafe_reason_from_string(reason);
  if (r) {
    const auto i = static_cast<std::size_t>(*r);
    auto& slot = unsafe_counters_[i];
    prometheus::Counter* c = slot.load(std::memory_order_acquire);
    if (!c) {
      c = &mirror_metrics().unsafe(route_, reason);
      slot.store(c, std::memory_order_release);
    }
    c->Increment();
    static_assert(routing::kMirrorUnsafeReasonCount <= 32);
    const std::uint32_t bit = 1u << i;
    if (unsafe_logged_bits_.load(std::memory_order_relaxed) & bit) return;  // logged: no lock
    unsafe_logged_bits_.fetch_or(bit, std::memory_order_relaxed);
  } else {
    mirror_metrics().unsafe(route_, reason).Increment();
  }
  {
    std::lock_guard lock(mu_);
    if (unsafe_logged_.find(reason) != unsafe_logged_.end()) return;
    unsafe_logged_.emplace(reason);
  }
  proxy::log_warn("mirrored statement may not replay the same on the other side",
                  {f("route", route_), f("reason", reason),
                   f("statement", std::string(statement.substr(0, 200))),
                   f("see", "docs/sync.md, Mirror mode: what cannot be replayed")});
}

// Requires mu_. Whether `size` more bytes go to the spool: the spool is set up and either
// holds transactions already (the order is memory, then spool) or the memory is full.
bool RouteMirror::spills_locked(std::uint64_t size) {
  if (spool_dir_.empty() || spool_failed_) return false;
  if (spool_.count() == 0 && queue_bytes_ + size <= max_queue_bytes_) return false;
  if (!spool_.is_open()) {
    std::string error;
    if (!spool_.open(spool_dir_, route_ + "." + std::to_string(::getpid()) + ".spool", error)) {
      spool_failed_ = true;
      detail_ = error;
      proxy::log_error("mirror: cannot spill to the spool; the overflow policy applies",
                       {f("route", route_), f("error", error)});
      return false;
    }
  }
  return true;
}

// Requires mu_. Appends `txn` to the spool; past max_spool_bytes under mark_diverged, or when
// the spool cannot be written while it holds transactions (the order would break), the route
// is marked diverged instead.
void RouteMirror::spool_locked(std::shared_ptr<proxy::MirrorTxn> txn,
                               std::function<void(bool)>& refused,
                               std::vector<std::function<void(bool)>>& dones) {
  const auto size = txn->size();
  if (overflow_ == config::MirrorOverflow::mark_diverged &&
      spool_.txn_bytes() + size > max_spool_bytes_) {
    refused = std::move(txn->done);
    dones =
        stop_diverged("the mirror spool passed sync.mirror.max_spool_bytes (" +
                          std::to_string(max_spool_bytes_) + " bytes) with overflow mark_diverged",
                      1);
    return;
  }
  txn->committed_at = std::chrono::steady_clock::now();
  std::string error;
  if (spool_.append(txn, error)) {
    ++submitted_;
    mirror_metrics().spool_bytes(route_).Set(static_cast<double>(spool_.bytes()));
    return;
  }
  spool_failed_ = true;
  refused = std::move(txn->done);
  dones = stop_diverged(error, 1);
}

// Requires mu_. Moves the oldest spilled transactions back into memory once the memory queue
// is at most half full (they are older than anything submitted since: the order holds).
void RouteMirror::refill_locked() {
  if (spool_.count() == 0 || queue_bytes_ > max_queue_bytes_ / 2) return;
  std::string error;
  auto txns = spool_.take(max_queue_bytes_ / 2, error);
  for (auto& t : txns) {
    queue_bytes_ += t->size();
    queue_.push_back(std::move(t));
  }
  mirror_metrics().spool_bytes(route_).Set(static_cast<double>(spool_.bytes()));
  mirror_metrics().queue_bytes(route_).Set(static_cast<double>(queue_bytes_));
  if (!error.empty()) {
    spool_failed_ = true;
    auto dones = stop_diverged(error, spool_.count());
    dones_to_fail_.insert(dones_to_fail_.end(), std::make_move_iterator(dones.begin()),
                          std::make_move_iterator(dones.end()));
  }
  publish_flags_locked();
}

void RouteMirror::refill() {
  std::vector<std::function<void(bool)>> dones;
  {
    std::lock_guard lock(mu_);
    refill_locked();
    dones.swap(dones_to_fail_);
  }
  for (auto& d : dones) d(false);
  wake_room_waiters();
}

boost::json::object RouteMirror::status() const {
  std::lock_guard lock(mu_);
  boost::json::object o;
  o["state"] = condition_;
  if (!detail_.empty()) o["detail"] = detail_;
  o["mirroring"] = !stopped_;
  o["diverged"] = diverged_;
  o["queued"] = queue_.size() + spool_.count();
  o["queue_bytes"] = queue_bytes_;
  if (!spool_dir_.empty()) {
    o["spooled"] = spool_.count();
    o["spool_bytes"] = spool_.bytes();
    o["max_spool_bytes"] = max_spool_bytes_;
    if (spool_.is_open()) o["spool_file"] = spool_.path();
  }
  o["max_queue_bytes"] = max_queue_bytes_;
  o["overflow"] = std::string(config::to_string(overflow_));
  o["submitted"] = submitted_;
  o["applied"] = applied_;
  o["divergences"] = divergences_;
  o["lag_seconds"] = queue_.empty()
                         ? 0.0
                         : std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                         queue_.front()->committed_at)
                               .count();
  if (!last_divergence_.empty()) o["last_divergence"] = last_divergence_;
  o["journal"] = journal_->path();
  return o;
}

proxy::MirrorDrain RouteMirror::drain_state() const {
  std::lock_guard lock(mu_);
  proxy::MirrorDrain d;
  d.exists = true;
  // A transaction leaves the queue once its replay ended.
  d.pending = queue_.size() + spool_.count();
  d.stopped = stopped_;
  d.condition = condition_;
  d.detail = detail_;
  d.divergences = divergences_;
  d.last_divergence_unix_ms = last_divergence_unix_ms_;
  d.last_divergence = last_divergence_;
  if (!queue_.empty()) {
    d.lag = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  queue_.front()->committed_at);
  }
  return d;
}

void RouteMirror::set_condition(std::string condition, std::string detail) {
  std::lock_guard lock(mu_);
  if (condition_ != "diverged" || !stopped_) {
    condition_ = std::move(condition);
    detail_ = std::move(detail);
  }
}

void RouteMirror::stop() {
  std::vector<std::function<void()>> waiters;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    waiters.swap(room_waiters_);  // they look again, then wait out their deadline
    room_waiting_.store(0, std::memory_order_relaxed);
  }
  for (auto& w : waiters) w();
  asio::post(wake_.get_executor(), [this] { wake_.cancel(); });
}

std::shared_ptr<routing::SyncPosition> RouteMirror::position() const {
  auto snap = runtime_.snapshot();
  for (const auto& rr : snap->routes) {
    if (rr.route->name == route_) return rr.sync;
  }
  return nullptr;
}

void RouteMirror::publish_position() {
  auto pos = position();
  if (!pos) return;
  const auto now = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point before;
  {
    std::lock_guard lock(mu_);
    before = queue_.empty() ? now : queue_.front()->committed_at;
  }
  auto ms = [](auto tp) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  };
  pos->publish(ms(before), std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count());
}

void RouteMirror::reset_for_new_start() {
  if (auto pos = position()) pos->reset();
  std::lock_guard lock(mu_);
  for (auto& q : queue_) {
    if (q->done) asio::post(wake_.get_executor(), [d = std::move(q->done)] { d(false); });
  }
  queue_.clear();
  for (auto& d : spool_.clear()) {
    asio::post(wake_.get_executor(), [d = std::move(d)] { d(false); });
  }
  spool_failed_ = false;
  mirror_metrics().spool_bytes(route_).Set(0);
  queue_bytes_ = 0;
  stopped_ = diverged_ = false;
  condition_ = "off";
  detail_.clear();
  copied_ = false;
  lag_seconds_ = 0;
  publish_flags_locked();
}

void RouteMirror::record_divergence(const proxy::MirrorTxn& txn, std::string_view kind,
                                    const std::vector<std::string>& got, const std::string& error) {
  const std::string statement =
      txn.fingerprint.empty() ? proxy::mirror_fingerprint(txn.messages) : txn.fingerprint;
  auto list = [](const std::vector<std::string>& v) {
    boost::json::array a;
    for (const auto& s : v) a.emplace_back(s);
    return a;
  };
  boost::json::object e;
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  e["time_unix_ms"] = now_ms;
  e["route"] = route_;
  e["sidecar_pid"] = static_cast<std::int64_t>(::getpid());
  e["session"] = txn.session;
  e["kind"] = std::string(kind);
  e["statement"] = statement;
  e["authoritative"] = list(txn.outcome);
  e["replay"] = list(got);
  if (!error.empty()) e["error"] = error;
  e["parameters"] = "redacted";
  {
    auto snap = runtime_.snapshot();
    const auto* r = snap->config->find_route(route_);
    if (r && r->sync.mirror.journal_parameters) {
      e["messages_hex"] = hex(txn.messages);
    }
  }
  journal_->write(e);
  mirror_metrics().divergences(route_, kind).Increment();
  std::string summary = std::string(kind) + ": " + statement;
  proxy::log_warn("mirror divergence: the replay differed from the authoritative side",
                  {f("route", route_), f("kind", kind), f("statement", statement),
                   f("error", error), f("journal", journal_->path())});
  std::lock_guard lock(mu_);
  ++divergences_;
  diverged_ = true;
  last_divergence_ = std::move(summary);
  last_divergence_unix_ms_ = now_ms;
}

}  // namespace pgshift::mirror
