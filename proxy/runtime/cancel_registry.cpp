#include "proxy/runtime/cancel_registry.hpp"

#include <openssl/crypto.h>

#include "wire/auth.hpp"

namespace pgshift::proxy {

void CancelSlot::attach(std::shared_ptr<const pool::UpstreamParams> upstream, wire::CancelKey key) {
  std::lock_guard lock(mu_);
  target_ = Target{std::move(upstream), key};
}

void CancelSlot::detach() {
  std::lock_guard lock(mu_);
  target_.reset();
}

std::optional<CancelSlot::Target> CancelSlot::current() const {
  std::lock_guard lock(mu_);
  return target_;
}

wire::CancelKey CancelRegistry::register_slot(std::shared_ptr<CancelSlot> slot, std::int32_t pid) {
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
    by_pid_.emplace(key_pid, Entry{raw[1], std::move(slot)});
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
  std::shared_ptr<CancelSlot> slot;
  {
    std::lock_guard lock(mu_);
    auto [first, last] = by_pid_.equal_range(key.pid);
    for (auto it = first; it != last; ++it) {
      // Every candidate is compared, in constant time each.
      if (CRYPTO_memcmp(&it->second.secret, &key.secret, sizeof key.secret) == 0) {
        slot = it->second.slot;
      }
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
