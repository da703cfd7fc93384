#include "proxy/session/io_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "proxy/telemetry/metrics.hpp"

namespace pgshift::proxy {
namespace {

// Per-thread free list of standard blocks, capped so a burst does not pin memory forever.
// low_water is the fewest blocks the list held since the last trim: that many sat unused
// for the whole period, and trim_free_blocks() gives them back.
struct FreeList {
  static constexpr std::size_t kMaxBlocks = 64;
  std::vector<std::unique_ptr<std::uint8_t[]>> blocks;
  std::size_t low_water = 0;
};
thread_local FreeList t_free;

std::unique_ptr<std::uint8_t[]> take_block() {
  if (!t_free.blocks.empty()) {
    auto b = std::move(t_free.blocks.back());
    t_free.blocks.pop_back();
    t_free.low_water = std::min(t_free.low_water, t_free.blocks.size());
    return b;
  }
  metrics().receive_blocks_allocated().Increment();
  return std::unique_ptr<std::uint8_t[]>(new std::uint8_t[IoBuffer::kBlockSize]);
}

}  // namespace

std::span<std::uint8_t> IoBuffer::writable() {
  if (!data_) {
    data_ = take_block();
    capacity_ = kBlockSize;
    begin_ = end_ = 0;
  }
  if (end_ == capacity_ && begin_ > 0) {
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return {data_.get() + end_, capacity_ - end_};
}

void IoBuffer::consume(std::size_t n) {
  begin_ += n;
  if (begin_ == end_) begin_ = end_ = 0;
}

void IoBuffer::reserve_total(std::size_t total) {
  if (!data_) writable();
  if (total <= capacity_ - begin_) return;
  if (total <= capacity_) {
    std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
    return;
  }
  std::unique_ptr<std::uint8_t[]> bigger(new std::uint8_t[total]);
  std::memcpy(bigger.get(), data_.get() + begin_, end_ - begin_);
  end_ -= begin_;
  begin_ = 0;
  if (capacity_ == kBlockSize && t_free.blocks.size() < FreeList::kMaxBlocks) {
    t_free.blocks.push_back(std::move(data_));
  }
  data_ = std::move(bigger);
  capacity_ = total;
  charge_.reset();  // an uncharged growth replaces a charged block
}

bool IoBuffer::reserve_charged(std::size_t total, MemoryBudget& budget, std::size_t limit) {
  if (total > kBlockSize && total > capacity_) {
    if (!charge_.set(budget, total, limit)) return false;
    MemoryCharge keep = std::move(charge_);
    reserve_total(total);
    charge_ = std::move(keep);
    return true;
  }
  reserve_total(total);
  return true;
}

void IoBuffer::shrink() {
  if (!data_ || capacity_ <= kBlockSize || size() > kBlockSize) return;
  auto block = take_block();
  std::memcpy(block.get(), data_.get() + begin_, size());
  end_ -= begin_;
  begin_ = 0;
  data_ = std::move(block);
  capacity_ = kBlockSize;
  charge_.reset();
  if (empty()) release();
}

void IoBuffer::release() {
  if (!data_) return;
  if (capacity_ == kBlockSize && t_free.blocks.size() < FreeList::kMaxBlocks) {
    t_free.blocks.push_back(std::move(data_));
  }
  data_.reset();
  capacity_ = begin_ = end_ = 0;
  charge_.reset();
}

std::size_t IoBuffer::trim_free_blocks() {
  const std::size_t unused = std::min(t_free.low_water, t_free.blocks.size());
  t_free.blocks.resize(t_free.blocks.size() - unused);
  t_free.low_water = t_free.blocks.size();
  return unused * kBlockSize;
}

}  // namespace pgshift::proxy
