#pragma once
// Read your writes (DESIGN.md §4): after routing key K writes, K's reads stay on the
// authoritative side until the other side has caught up with that write.
//
// "Caught up" is a CatchUpOracle. Today it is WindowOracle (a fixed time window, config
// read_split.read_your_writes_window, default 2 s). The sync feature replaces it with an
// oracle that compares WriteMark::position (the source LSN after the commit, or the mirror
// queue sequence number) with the position the other side has applied.
//
// Memory is bounded: at most max_keys keys are tracked (by a 64-bit hash of the key; a
// collision can only hold a read on the authoritative side, which is safe). Entries are
// kept in write order and dropped from the oldest end once caught up. When the table is
// full of writes that have not caught up, the oldest is evicted and its mark becomes a
// global hold: every key's reads stay authoritative until that mark has caught up. Eviction
// can therefore cost read offloading, never correctness. Evictions are counted.
//
// Thread-safe: one tracker per route is shared by all sessions (a user may write through
// one connection and read through another); an internal mutex guards it. No clocks: the
// caller passes the time (unix or steady milliseconds, consistently).
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace pgshift::routing {

struct WriteMark {
  std::int64_t at_ms = 0;      // when the write committed on the authoritative side
  std::uint64_t position = 0;  // sync position of the write; 0 = unknown
};

class CatchUpOracle {
 public:
  virtual ~CatchUpOracle() = default;
  // True once a read of the non-authoritative side would see the write described by `mark`.
  virtual bool caught_up(const WriteMark& mark, std::int64_t now_ms) const = 0;
};

// Caught up `window` after the write. A window <= 0 disables holding.
class WindowOracle final : public CatchUpOracle {
 public:
  explicit WindowOracle(std::int64_t window_ms) : window_ms_(window_ms) {}
  bool caught_up(const WriteMark& mark, std::int64_t now_ms) const override {
    return now_ms >= mark.at_ms + window_ms_;
  }
  std::int64_t window_ms() const { return window_ms_; }

 private:
  std::int64_t window_ms_;
};

class ReadYourWrites {
 public:
  static constexpr std::size_t kDefaultMaxKeys = 100000;

  explicit ReadYourWrites(std::shared_ptr<const CatchUpOracle> oracle,
                          std::size_t max_keys = kDefaultMaxKeys);

  // Records that `key` wrote. Call when the write commits (ReadyForQuery after it).
  void record_write(std::string_view key, WriteMark mark);

  // True if reads by `key` must stay on the authoritative side at `now_ms`.
  bool must_hold(std::string_view key, std::int64_t now_ms);

  // Drops every caught-up entry from the oldest end (also done by record_write and
  // must_hold as they go; exposed for a periodic sweep and tests).
  void sweep(std::int64_t now_ms);

  std::size_t size() const;
  std::uint64_t evictions() const;        // entries dropped before they caught up
  bool global_hold(std::int64_t now_ms);  // an eviction is still holding every key

 private:
  struct Entry {
    std::uint64_t hash;
    WriteMark mark;
  };
  using Order = std::list<Entry>;  // oldest write first

  void sweep_locked(std::int64_t now_ms);
  bool global_hold_locked(std::int64_t now_ms);

  std::shared_ptr<const CatchUpOracle> oracle_;
  const std::size_t max_keys_;
  mutable std::mutex mutex_;
  Order order_;
  std::unordered_map<std::uint64_t, Order::iterator> index_;
  std::optional<WriteMark> evicted_;  // the newest mark evicted before it caught up
  std::uint64_t evictions_ = 0;
};

}  // namespace pgshift::routing
