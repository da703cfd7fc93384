#include "proxy/runtime/cancel_registry.hpp"

#include <openssl/crypto.h>

#include <utility>

#include "wire/auth.hpp"

namespace pgshift::proxy {

void CancelSlot::attach(std::shared_ptr<const pool::UpstreamParams> upstream, wire::CancelKey key) {
  std::shared_ptr<const pool::UpstreamParams> previous;  // released outside the lock
  lock();
  previous = std::exchange(target_.upstream, std::move(upstream));
  target_.server_key = key;
  attached_ = true;
  unlock();
}

void CancelSlot::detach() {
  lock();
  attached_ = false;  // the upstream stays (a pool's, shared): the next attach replaces it
  unlock();
}

std::optional<CancelSlot::Target> CancelSlot::current() const {
  std::optional<Target> t;
  lock();
  if (attached_) t = target_;
  unlock();
  return t;
}

wire::CancelKey CancelRegistry::register_slot(CancelSlot& slot, std::int32_t pid) {
  std::lock_guard lock(mu_);
  for (;;) {
    std::int32_t raw[2];
    wire::random_bytes(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(raw), sizeof raw));
    // Positive pids look like real backend pids to clients that print them; random ones
    // stay apart from each other (a real pid may be shared, see the header).
    const std::int32_t key_pid = pid > 0 ? pid : raw[0] & 0x7fffffff;
    if (key_pid == 0 || (pid <= 0 && by_pid_.contains(key_pid))) continue;
    auto [first, last] = by_pid_.equal_range(key_pid);
    bool taken = false;
    for (auto it = first; it != last; ++it) taken = taken || it->second.secret == raw[1];
    if (taken) continue;
    by_pid_.emplace(key_pid, Entry{raw[1], &slot});
    return {key_pid, raw[1]};
  }
}

void CancelRegistry::unregister(wire::CancelKey key) {
  std::lock_guard lock(mu_);
  auto [first, last] = by_pid_.equal_range(key.pid);
  for (auto it = first; it != last; ++it) {
    if (it->second.secret == key.secret) {
      by_pid_.erase(it);
      return;
    }
  }
}

std::optional<CancelSlot::Target> CancelRegistry::lookup(wire::CancelKey key) const {
  // The slot is read under the lock: its session unregisters (taking the lock) before the
  // slot goes away.
  std::lock_guard lock(mu_);
  const CancelSlot* slot = nullptr;
  auto [first, last] = by_pid_.equal_range(key.pid);
  for (auto it = first; it != last; ++it) {
    // Every candidate is compared, in constant time each.
    if (CRYPTO_memcmp(&it->second.secret, &key.secret, sizeof key.secret) == 0) {
      slot = it->second.slot;
    }
  }
  if (!slot) return std::nullopt;
  return slot->current();
}

std::size_t CancelRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_pid_.size();
}

}  // namespace pgshift::proxy
