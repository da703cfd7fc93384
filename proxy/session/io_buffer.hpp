#pragma once
// A receive buffer that holds memory only while it has bytes in it. Idle sessions keep no
// I/O memory (the buffer is released back to a per-thread free list when it drains), which
// is what keeps the per-idle-client footprint small. Standard blocks are 16 KiB; a wanted
// message larger than that grows the buffer up to the message size (bounded by the
// configured maximum message length), and the large block is freed when it drains or
// shrinks. Growth past a standard block can be charged to the process's MemoryBudget
// (reserve_charged); the charge is held exactly as long as the large block.
// Not thread-safe: owned by one session direction on one io_context thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "proxy/runtime/memory_budget.hpp"

namespace pgshift::proxy {

class IoBuffer {
 public:
  static constexpr std::size_t kBlockSize = 16 * 1024;

  IoBuffer() = default;
  IoBuffer(const IoBuffer&) = delete;
  IoBuffer& operator=(const IoBuffer&) = delete;
  ~IoBuffer() { release(); }

  // Free space to read into (acquires storage if none).
  std::span<std::uint8_t> writable();
  void commit(std::size_t n) { end_ += n; }
  // Unconsumed bytes.
  std::span<const std::uint8_t> data() const { return {data_.get() + begin_, end_ - begin_}; }
  std::span<std::uint8_t> mutable_data() { return {data_.get() + begin_, end_ - begin_}; }
  void consume(std::size_t n);
  std::size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  // Makes room for at least `total` bytes of unconsumed data (moves data to the front,
  // grows if needed).
  void reserve_total(std::size_t total);
  // reserve_total, charging a block larger than the standard one to `budget`; false (and
  // nothing changed) when the budget cannot give it.
  bool reserve_charged(std::size_t total, MemoryBudget& budget, std::size_t limit);
  // Gives a large block back (and its charge) once what is left fits a standard block.
  void shrink();
  std::size_t capacity() const { return capacity_; }
  // Returns storage to the free list when empty.
  void release_if_empty() {
    if (empty()) release();
  }
  bool holds_memory() const { return data_ != nullptr; }
  // Frees the calling thread's free-list blocks that no buffer took since the previous
  // call (called once per IdleSweeper period): a login burst or a busy minute leaves no
  // spare blocks behind once it is over. Returns the bytes freed.
  static std::size_t trim_free_blocks();

 private:
  void release();
  std::unique_ptr<std::uint8_t[]> data_;
  // 32 bits: a block is at most limits.max_message_length (1 GiB at most) plus a header.
  std::uint32_t capacity_ = 0, begin_ = 0, end_ = 0;
  MemoryCharge charge_;  // for a charged large block
};

}  // namespace pgshift::proxy
