#include "proxy/session/io_buffer.hpp"

#include <cstring>
#include <vector>

namespace pgshift::proxy {
namespace {

// Per-thread free list of standard blocks, capped so a burst does not pin memory forever.
struct FreeList {
  static constexpr std::size_t kMaxBlocks = 64;
  std::vector<std::unique_ptr<std::uint8_t[]>> blocks;
};
thread_local FreeList t_free;

std::unique_ptr<std::uint8_t[]> take_block() {
  if (!t_free.blocks.empty()) {
    auto b = std::move(t_free.blocks.back());
    t_free.blocks.pop_back();
    return b;
  }
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

}  // namespace pgshift::proxy
