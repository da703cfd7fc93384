#include "proxy/runtime/client_slots.hpp"

namespace pgshift::proxy {

bool ClientSlots::try_acquire(long limit) noexcept {
  long taken = taken_.load(std::memory_order_relaxed);
  do {
    // At or over the limit (over after a reload lowered it): refuse, take nothing.
    if (taken >= limit) return false;
  } while (!taken_.compare_exchange_weak(taken, taken + 1, std::memory_order_relaxed));
  return true;
}

ClientSlot ClientSlot::try_take(std::shared_ptr<ClientSlots> slots, long limit) {
  if (!slots || !slots->try_acquire(limit)) return {};
  return ClientSlot(std::move(slots));
}

void ClientSlot::reset() noexcept {
  if (slots_) {
    slots_->release();
    slots_.reset();
  }
}

}  // namespace pgshift::proxy
