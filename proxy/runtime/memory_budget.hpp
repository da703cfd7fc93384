#pragma once
// The process-wide budget for protocol messages the relay must hold whole (a Query to
// classify, a Parse or Bind to rewrite or to hold until its batch is routed): the sum over
// all sessions stays within limits.buffered_memory_bytes, so a few clients sending huge
// messages at once cannot take the process's memory. Messages that are only forwarded
// (CopyData, DataRow...) are relayed in pieces and never charged. docs/configuration.md.
//
// MemoryBudget is thread-safe (one atomic counter); a MemoryCharge belongs to one session
// on one thread and gives its bytes back when it is reset or destroyed (RAII).
#include <atomic>
#include <cstddef>
#include <utility>

namespace pgshift::proxy {

class MemoryBudget {
 public:
  // Adds `bytes` if the total stays within `limit` (the limit is passed by the caller, from
  // its configuration snapshot, so a reload applies to the next charge).
  bool try_charge(std::size_t bytes, std::size_t limit) noexcept {
    std::size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > limit || used > limit - bytes) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void release(std::size_t bytes) noexcept { used_.fetch_sub(bytes, std::memory_order_relaxed); }
  std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::size_t> used_{0};
};

// Bytes held against a MemoryBudget. Move-only; not thread-safe.
class MemoryCharge {
 public:
  MemoryCharge() = default;
  MemoryCharge(const MemoryCharge&) = delete;
  MemoryCharge& operator=(const MemoryCharge&) = delete;
  MemoryCharge(MemoryCharge&& o) noexcept
      : budget_(std::exchange(o.budget_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  MemoryCharge& operator=(MemoryCharge&& o) noexcept {
    if (this != &o) {
      reset();
      budget_ = std::exchange(o.budget_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~MemoryCharge() { reset(); }

  // Holds `bytes` in total (more or less than now). False, holding what it held before,
  // when the budget cannot give the difference.
  bool set(MemoryBudget& budget, std::size_t bytes, std::size_t limit) noexcept {
    if (budget_ && budget_ != &budget) reset();
    if (bytes > bytes_) {
      if (!budget.try_charge(bytes - bytes_, limit)) return false;
    } else if (bytes < bytes_) {
      budget.release(bytes_ - bytes);
    }
    budget_ = &budget;
    bytes_ = bytes;
    return true;
  }
  void reset() noexcept {
    if (budget_ && bytes_ > 0) budget_->release(bytes_);
    budget_ = nullptr;
    bytes_ = 0;
  }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  MemoryBudget* budget_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace pgshift::proxy
