#pragma once
// How far the non-authoritative side of a logical-sync route has caught up, as measured by
// the lag marker (proxy/migrate/lag_monitor.hpp, DESIGN.md §5), and the read-your-writes
// oracle built on it.
//
// The lag monitor writes a marker row on the authoritative side; before each write it notes
// the local steady-clock time. Once the other side shows that marker (or a later one), every
// transaction that committed before that noted time has been applied there, because logical
// replication applies transactions in commit order. That time is `applied_before_ms`.
//   lag           = now - applied_before_ms   (an upper bound on staleness; grows while
//                                              either database is down)
//   caught up     = a write acknowledged at steady time t, with t < applied_before_ms
// Both come from one atomic load: no per-query round trip.
//
// Times are std::chrono::steady_clock milliseconds, the clock sessions use for WriteMark.
// Thread-safety: every member is an atomic; the lag monitor thread stores, sessions load.
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>

#include "routing/read_your_writes.hpp"

namespace pgshift::routing {

class SyncPosition {
 public:
  static constexpr std::int64_t kUnknown = std::numeric_limits<std::int64_t>::min();

  explicit SyncPosition(std::int64_t max_lag_ms) : max_lag_ms_(max_lag_ms) {}

  // Lag monitor: every commit acknowledged before steady time `applied_before_ms` is visible
  // on the non-authoritative side; `origin_unix_ms` is the marker's time on the origin
  // server's clock (for status output). Never moves backwards.
  void publish(std::int64_t applied_before_ms, std::int64_t origin_unix_ms) {
    std::int64_t cur = applied_before_ms_.load(std::memory_order_relaxed);
    while (applied_before_ms > cur &&
           !applied_before_ms_.compare_exchange_weak(cur, applied_before_ms)) {
    }
    origin_unix_ms_.store(origin_unix_ms, std::memory_order_relaxed);
  }
  // Sync was stopped or restarted from scratch: nothing is known to be applied.
  void reset() {
    applied_before_ms_.store(kUnknown);
    origin_unix_ms_.store(kUnknown);
  }

  std::int64_t applied_before_ms() const { return applied_before_ms_.load(); }
  std::int64_t origin_unix_ms() const { return origin_unix_ms_.load(); }
  // Milliseconds of possible staleness at `now_ms`; max() when nothing has been applied yet.
  std::int64_t lag_ms(std::int64_t now_ms) const {
    const std::int64_t applied = applied_before_ms();
    if (applied == kUnknown) return std::numeric_limits<std::int64_t>::max();
    return now_ms > applied ? now_ms - applied : 0;
  }
  bool lagging(std::int64_t now_ms) const { return lag_ms(now_ms) >= max_lag_ms(); }

  std::int64_t max_lag_ms() const { return max_lag_ms_.load(std::memory_order_relaxed); }
  void set_max_lag_ms(std::int64_t ms) { max_lag_ms_.store(ms, std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> applied_before_ms_{kUnknown};
  std::atomic<std::int64_t> origin_unix_ms_{kUnknown};
  std::atomic<std::int64_t> max_lag_ms_;
};

// Read your writes by position: a write acknowledged at steady time t is caught up once the
// other side has applied a marker written after t.
class MarkerOracle final : public CatchUpOracle {
 public:
  explicit MarkerOracle(std::shared_ptr<const SyncPosition> position)
      : position_(std::move(position)) {}
  bool caught_up(const WriteMark& mark, std::int64_t /*now_ms*/) const override {
    return mark.at_ms < position_->applied_before_ms();
  }

 private:
  std::shared_ptr<const SyncPosition> position_;
};

}  // namespace pgshift::routing
