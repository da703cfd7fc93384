#pragma once
// Maps the BackendKeyData pgshift gave each client to whatever server that client is using
// right now, so a CancelRequest (which arrives on a new connection, on any thread) reaches
// the right upstream backend. Thread-safe.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "pool/upstream.hpp"
#include "wire/startup.hpp"

namespace pgshift::proxy {

// A member of its client session (no allocation of its own: an idle client is mostly its
// session object); updated when the session attaches or detaches a server connection.
// attach/detach on the session's thread, current() from any thread: a spin lock held for a
// copy, since readers are rare (a CancelRequest) and never wait long.
class CancelSlot {
 public:
  struct Target {
    std::shared_ptr<const pool::UpstreamParams> upstream;
    wire::CancelKey server_key;
  };
  void attach(std::shared_ptr<const pool::UpstreamParams> upstream, wire::CancelKey key);
  void detach();
  std::optional<Target> current() const;

 private:
  void lock() const {
    while (busy_.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
  }
  void unlock() const { busy_.store(false, std::memory_order_release); }
  mutable std::atomic<bool> busy_{false};
  bool attached_ = false;
  Target target_;
};

class CancelRegistry {
 public:
  // Allocates a client-facing key for the slot: the pid `pid` when given (session mode hands
  // the client its server's real pid, so that pg_backend_pid() and NotificationResponse
  // agree with BackendKeyData), else a random positive one; the secret is always random and
  // unique among the entries of that pid (a pid may be registered twice: a server passed to
  // the next client before the last one unregistered, or two upstreams with the same pid).
  // Call unregister() when the session ends, before the slot is destroyed.
  wire::CancelKey register_slot(CancelSlot& slot, std::int32_t pid = 0);
  void unregister(wire::CancelKey key);
  // The target for a cancel request, if the key (pid and secret, compared in constant time)
  // belongs to a live session with a server attached.
  std::optional<CancelSlot::Target> lookup(wire::CancelKey key) const;
  std::size_t size() const;

 private:
  struct Entry {
    std::int32_t secret;
    const CancelSlot* slot;  // valid until unregister()
  };
  mutable std::mutex mu_;
  std::unordered_multimap<std::int32_t, Entry> by_pid_;
};

}  // namespace pgshift::proxy
