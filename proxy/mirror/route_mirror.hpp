#pragma once
// The mirror of one route in this sidecar (docs/sync.md, "Mirror mode"): the queue of
// committed transactions waiting to be replayed on the other side, in the order the
// authoritative side acknowledged them, its bound and overflow policy, and what the replay
// found (applied, divergences). The replay itself is RouteMirror::run(), a coroutine on the
// mirror's own thread (mirror_service.hpp) with one connection to the other side, on which
// transactions are pipelined (replay.cpp).
//
// Thread-safety: submit(), has_room(), mirroring(), wait_for_room(), note_unsafe() and status()
// may be called from any thread (a mutex, no I/O under it; has_room() and mirroring() read
// atomics). run() runs on the mirror thread only.
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "config/config.hpp"
#include "pool/prepared_set.hpp"
#include "pool/server_params.hpp"
#include "pool/upstream.hpp"
#include "proxy/mirror/answer_reader.hpp"
#include "proxy/mirror/journal.hpp"
#include "proxy/mirror/replay_batch.hpp"
#include "proxy/mirror/spool.hpp"
#include "proxy/runtime/mirror_sink.hpp"
#include "proxy/runtime/runtime.hpp"
#include "routing/mirror_safety.hpp"
#include "routing/sync_position.hpp"
#include "wire/message_types.hpp"

namespace pgshift::mirror {

namespace asio = boost::asio;

class RouteMirror {
 public:
  RouteMirror(proxy::Runtime& runtime, std::string route, asio::any_io_executor executor,
              std::shared_ptr<Journal> journal);

  bool has_room() const;
  // MirrorSink::wait_for_room.
  bool wait_for_room(std::function<void()> wake);
  bool mirroring() const;
  void submit(std::shared_ptr<proxy::MirrorTxn> txn);
  // Stops mirroring and marks the route diverged (overflow mark_diverged): the queue is
  // dropped, counted and journaled as one divergence of kind overflow.
  void mark_diverged(std::string_view why);
  // MirrorSink::in_doubt: a divergence of kind in_doubt.
  void record_in_doubt(const proxy::MirrorTxn& txn) {
    record_divergence(txn, "in_doubt", {},
                      "the session ended before the authoritative side answered its commit; "
                      "not replayed");
  }
  void note_unsafe(std::string_view reason, std::string_view statement);
  boost::json::object status() const;
  proxy::MirrorDrain drain_state() const;

  // Replays the queue until stop(). On the mirror thread.
  asio::awaitable<void> run();
  void stop();

 private:
  enum class Outcome { applied, diverged, retry };
  struct Applied {
    Outcome outcome = Outcome::retry;
    std::vector<std::string> got;
    std::string error;  // why it did not apply, for status and the journal
  };

  const config::Route* route_config(proxy::SnapshotPtr& snap) const;
  // The route's phase says writes are mirrored (and towards which side).
  bool phase_mirrors(routing::Side& to) const;
  void reset_for_new_start();
  // Read your writes and the split's lag gate (routing/sync_position.hpp): every commit
  // acknowledged before the oldest queued one (or now, when none is queued) is replayed.
  // Published only while streaming: while copying nothing is known to be on the target.
  void publish_position();
  std::shared_ptr<routing::SyncPosition> position() const;
  asio::awaitable<bool> ensure_connection(routing::Side to);
  asio::awaitable<bool> copy_done();
  // The pipelined replay (replay.cpp): queued transactions are written back to back, each
  // still its own transaction, and their answers read in bulk and compared in order.
  struct InFlight {
    std::shared_ptr<proxy::MirrorTxn> txn;
    Applied result;
    std::uint32_t answers = 0;  // ReadyForQuery received
    // Sent as one round trip (replay_batch.hpp, join_transaction()): one ReadyForQuery.
    bool joined = false;
    char status = wire::txn_status::idle;
    bool failed = false, fatal = false;
    bool ends_idle = true;                // replay_batch.hpp: the next may follow unanswered
    std::vector<std::string> introduced;  // statements it prepared or evicted
  };
  // With nothing in flight: the round trips the front transaction needs first (connect,
  // the initial copy, the client's parameters). False when it cannot go yet (after a pause)
  // or was finished here (its parameters were refused).
  asio::awaitable<bool> prepare_front(const std::shared_ptr<proxy::MirrorTxn>& txn,
                                      routing::Side to, std::chrono::milliseconds& backoff);
  void fill_pipeline();
  asio::awaitable<void> write_pipeline(pool::ServerConnection* conn);
  asio::awaitable<void> read_answers();
  bool on_answer(const pool::BackendMessage& m);
  void complete_front();
  asio::awaitable<void> lose_connection();
  // Waits for the write in progress, if any; close: cancel it by closing the connection.
  asio::awaitable<void> writer_idle(bool close);
  asio::awaitable<void> drop_connection();
  bool params_match(const proxy::MirrorTxn& txn) const;
  // Journals, pops and acknowledges the completed transactions (one lock for all of them).
  void finish_completed();
  void record_divergence(const proxy::MirrorTxn& txn, std::string_view kind,
                         const std::vector<std::string>& got, const std::string& error);
  void set_condition(std::string condition, std::string detail = {});
  bool room_locked() const;     // has_room() with mu_ held
  void publish_flags_locked();  // room_flag_ and mirroring_flag_ from the state under mu_
  // Calls the room waiters once the queue has room (without mu_). Called after everything
  // that shrinks the queue or lifts the bound (see wait_for_room() for the ordering).
  void wake_room_waiters();
  // The spool (sync.mirror.spool_dir); each requires mu_.
  bool spills_locked(std::uint64_t size);
  void spool_locked(std::shared_ptr<proxy::MirrorTxn> txn, std::function<void(bool)>& refused,
                    std::vector<std::function<void(bool)>>& dones);
  void refill_locked();
  // Takes the spool into the memory queue when it has room; fails what a broken spool lost.
  void refill();
  // mark_diverged() with mu_ held; returns the completions to call outside it.
  std::vector<std::function<void(bool)>> stop_diverged(std::string why, std::uint64_t extra);
  asio::awaitable<void> pause(std::chrono::milliseconds d);

  proxy::Runtime& runtime_;
  const std::string route_;
  asio::steady_timer wake_;
  std::shared_ptr<Journal> journal_;
  // The route's series, looked up once (Family::Add takes a lock and builds labels).
  prometheus::Gauge& queue_gauge_;
  prometheus::Gauge& lag_gauge_;
  prometheus::Counter& applied_counter_;
  std::array<std::atomic<prometheus::Counter*>, routing::kMirrorUnsafeReasonCount>
      unsafe_counters_{};  // made at first use (a reason never seen has no series)

  // Guarded by mu_.
  mutable std::mutex mu_;
  std::deque<std::shared_ptr<proxy::MirrorTxn>> queue_;
  std::uint64_t queue_bytes_ = 0;
  std::uint64_t max_queue_bytes_ = 256ull << 20;
  config::MirrorOverflow overflow_ = config::MirrorOverflow::block;
  std::string spool_dir_;  // "" = no spill (read once: the spool file is opened on first use)
  std::uint64_t max_spool_bytes_ = 4ull << 30;
  Spool spool_;
  bool spool_failed_ = false;
  std::vector<std::function<void(bool)>> dones_to_fail_;  // completions refill() calls
  bool diverged_ = false;  // stopped (mark_diverged) or a replay differed
  bool stopped_ = false;   // mark_diverged: no longer mirroring until a new start
  std::uint64_t applied_ = 0, divergences_ = 0, submitted_ = 0;
  std::string condition_ = "starting";  // copying | streaming | target_unreachable | ...
  std::string detail_;
  std::string last_divergence_;
  std::int64_t last_divergence_unix_ms_ = 0;
  double lag_seconds_ = 0;
  std::set<std::string, std::less<>> unsafe_logged_;
  std::vector<std::function<void()>> room_waiters_;  // overflow block: sessions waiting
  std::atomic<std::size_t> room_waiting_{0};         // room_waiters_.size(), read without mu_
  std::atomic<bool> room_flag_{true}, mirroring_flag_{true};  // has_room(), mirroring()
  // note_unsafe(): the reasons already logged, read without mu_ (bit per known reason).
  std::atomic<std::uint32_t> unsafe_logged_bits_{0};
  bool stop_ = false;
  bool sleeping_ = false;  // run() waits for a transaction: submit() wakes it (else no post)

  // Mirror thread only.
  config::MirrorAck ack_ = config::MirrorAck::async;  // the route's, read each round of run()
  std::unique_ptr<pool::ServerConnection> conn_;
  routing::Side conn_side_ = routing::Side::target;
  pool::PreparedSet prepared_{4096};
  pool::ParameterState params_;  // the connection's tracked parameters
  // Brings the connection to the transaction's client parameters (one round trip when they
  // differ); false when the connection failed or refused them (the error in `error`).
  asio::awaitable<bool> sync_parameters(const proxy::MirrorTxn& txn, std::string& error);
  bool copied_ = false;
  std::chrono::steady_clock::time_point next_copy_check_{};
  AnswerReader reader_;
  std::deque<InFlight> in_flight_;  // the queue's first in_flight_.size() transactions
  std::vector<std::shared_ptr<proxy::MirrorTxn>> candidates_;  // fill_pipeline()'s batch
  std::size_t in_flight_bytes_ = 0;
  NameSet pending_statements_;  // prepared or evicted by a transaction in flight
  std::vector<std::pair<Applied, std::shared_ptr<proxy::MirrorTxn>>> completed_;
  wire::Bytes out_, sending_;  // sending_: the write in progress
  wire::Bytes joined_;         // one transaction joined into one round trip (fill_pipeline)
  bool writing_ = false;
  bool reset_after_drain_ = false;  // a replay failed: new connection once in flight drains
  asio::steady_timer write_done_;
  // The client parameters of the last transaction sent (sync_parameters()).
  std::shared_ptr<const std::vector<std::pair<std::string, std::string>>> synced_params_;
  // A transaction sent on the connection may have changed its settings (a replayed SET):
  // the next one first runs RESET ALL and sets its own (sync_parameters()).
  bool settings_dirty_ = false;
};

}  // namespace pgshift::mirror
