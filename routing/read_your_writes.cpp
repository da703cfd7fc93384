#include "routing/read_your_writes.hpp"

#include <xxhash.h>

#include <algorithm>

namespace pgshift::routing {
namespace {

std::uint64_t hash_key(std::string_view key) {
  return XXH3_64bits(key.data(), key.size());
}

WriteMark later(const WriteMark& a, const WriteMark& b) {
  return WriteMark{std::max(a.at_ms, b.at_ms), std::max(a.position, b.position)};
}

}  // namespace

ReadYourWrites::ReadYourWrites(std::shared_ptr<const CatchUpOracle> oracle, std::size_t max_keys)
    : oracle_(std::move(oracle)), max_keys_(std::max<std::size_t>(max_keys, 1)) {}

void ReadYourWrites::sweep_locked(std::int64_t now_ms) {
  // Writes are recorded in commit order, so the oldest end catches up first. An entry that
  // has not caught up stops the sweep even if a newer one has (positions may interleave).
  while (!order_.empty() && oracle_->caught_up(order_.front().mark, now_ms)) {
    index_.erase(order_.front().hash);
    order_.pop_front();
  }
}

bool ReadYourWrites::global_hold_locked(std::int64_t now_ms) {
  if (evicted_ && oracle_->caught_up(*evicted_, now_ms)) evicted_.reset();
  return evicted_.has_value();
}

void ReadYourWrites::record_write(std::string_view key, WriteMark mark) {
  const std::uint64_t h = hash_key(key);
  std::lock_guard lock(mutex_);
  sweep_locked(mark.at_ms);
  if (auto it = index_.find(h); it != index_.end()) {
    mark = later(mark, it->second->mark);
    order_.erase(it->second);
    index_.erase(it);
  }
  if (order_.size() >= max_keys_) {
    // Full of writes that have not caught up: fail safe with a global hold.
    const Entry& oldest = order_.front();
    evicted_ = evicted_ ? later(*evicted_, oldest.mark) : oldest.mark;
    ++evictions_;
    index_.erase(oldest.hash);
    order_.pop_front();
  }
  order_.push_back(Entry{h, mark});
  index_.emplace(h, std::prev(order_.end()));
}

bool ReadYourWrites::must_hold(std::string_view key, std::int64_t now_ms) {
  const std::uint64_t h = hash_key(key);
  std::lock_guard lock(mutex_);
  if (global_hold_locked(now_ms)) return true;
  sweep_locked(now_ms);
  const auto it = index_.find(h);
  if (it == index_.end()) return false;
  if (oracle_->caught_up(it->second->mark, now_ms)) {
    order_.erase(it->second);
    index_.erase(it);
    return false;
  }
  return true;
}

void ReadYourWrites::sweep(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  sweep_locked(now_ms);
  global_hold_locked(now_ms);
}

std::size_t ReadYourWrites::size() const {
  std::lock_guard lock(mutex_);
  return order_.size();
}

std::uint64_t ReadYourWrites::evictions() const {
  std::lock_guard lock(mutex_);
  return evictions_;
}

bool ReadYourWrites::global_hold(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  return global_hold_locked(now_ms);
}

}  // namespace pgshift::routing
