#pragma once
// A receive buffer that holds memory only while it has bytes in it. Idle sessions keep no
// I/O memory (the buffer is released back to a per-thread free list when it drains), which
// is what keeps the per-idle-client footprint small. Standard blocks are 16 KiB; a wanted
// message larger than that grows the buffer up to the message size (bounded by the
// configured maximum message length), and the large block is freed when it drains.
// Not thread-safe: owned by one session direction on one io_context thread.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

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
  // Returns storage to the free list when empty.
  void release_if_empty() {
    if (empty()) release();
  }
  bool holds_memory() const { return data_ != nullptr; }

 private:
  void release();
  std::unique_ptr<std::uint8_t[]> data_;
  std::size_t capacity_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace pgshift::proxy
