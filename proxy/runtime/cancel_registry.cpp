#include "proxy/runtime/cancel_registry.hpp"

#include <openssl/crypto.h>

#include "wire/auth.hpp"

namespace pgshift::proxy {

void CancelSlot::attach(std::shared_ptr<const pool::UpstreamParams> upstream,
                        wire::CancelKey key) {
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

wire::CancelKey CancelRegistry::register_slot(std::shared_ptr<CancelSlot> slot) {
  std::lock_guard lock(mu_);
  for (;;) {
    std::int32_t raw[2];
    wire::random_bytes(
        std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(raw), sizeof raw));
    // Positive pids look like real backend pids to clients that print them.
    std::int32_t pid = raw[0] & 0x7fffffff;
    if (pid == 0 || by_pid_.contains(pid)) continue;
    by_pid_.emplace(pid, Entry{raw[1], std::move(slot)});
    return {pid, raw[1]};
  }
}

void CancelRegistry::unregister(wire::CancelKey key) {
  std::lock_guard lock(mu_);
  auto it = by_pid_.find(key.pid);
  if (it != by_pid_.end() && it->second.secret == key.secret) by_pid_.erase(it);
}

std::optional<CancelSlot::Target> CancelRegistry::lookup(wire::CancelKey key) const {
  std::shared_ptr<CancelSlot> slot;
  {
    std::lock_guard lock(mu_);
    auto it = by_pid_.find(key.pid);
    if (it == by_pid_.end()) return std::nullopt;
    if (CRYPTO_memcmp(&it->second.secret, &key.secret, sizeof key.secret) != 0) {
      return std::nullopt;
    }
    slot = it->second.slot;
  }
  return slot->current();
}

std::size_t CancelRegistry::size() const {
  std::lock_guard lock(mu_);
  return by_pid_.size();
}

}  // namespace pgshift::proxy
