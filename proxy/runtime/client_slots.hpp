#pragma once
// routes[].pool.max_client_connections: how many client connections one route holds.
//
// ClientSlots is the count of one route, shared by the sessions of every I/O thread and
// carried across reloads by route name (build_snapshot in proxy/runtime.cpp), so a reload
// neither forgets the clients already in nor lets the limit be exceeded twice over. The
// limit itself is not stored here: each login checks against the limit of the snapshot it
// runs under, so a reload that lowers the limit refuses new clients and never ends
// existing ones.
//
// ClientSlot is the token a session holds for its slot; the slot is given back when the
// token is destroyed or reset(). Thread-safety: ClientSlots is lock-free and safe from any
// thread; one ClientSlot belongs to one session (move-only, not shared).
#include <atomic>
#include <memory>

namespace pgshift::proxy {

class ClientSlots {
 public:
  // Takes a slot if fewer than `limit` are taken (compare-and-swap; never over the limit,
  // whatever the threads do at the same time). False when the route is full.
  bool try_acquire(long limit) noexcept;
  void release() noexcept { taken_.fetch_sub(1, std::memory_order_relaxed); }
  long in_use() const noexcept { return taken_.load(std::memory_order_relaxed); }

 private:
  std::atomic<long> taken_{0};
};

class ClientSlot {
 public:
  ClientSlot() = default;
  // A token for one slot of `slots`, or an empty token (false) when `limit` are taken.
  static ClientSlot try_take(std::shared_ptr<ClientSlots> slots, long limit);

  ~ClientSlot() { reset(); }
  ClientSlot(ClientSlot&& other) noexcept = default;
  ClientSlot& operator=(ClientSlot&& other) noexcept {
    if (this != &other) {
      reset();
      slots_ = std::move(other.slots_);
    }
    return *this;
  }
  ClientSlot(const ClientSlot&) = delete;
  ClientSlot& operator=(const ClientSlot&) = delete;

  explicit operator bool() const noexcept { return slots_ != nullptr; }
  // Gives the slot back (if held). Idempotent.
  void reset() noexcept;

 private:
  explicit ClientSlot(std::shared_ptr<ClientSlots> slots) : slots_(std::move(slots)) {}
  std::shared_ptr<ClientSlots> slots_;
};

}  // namespace pgshift::proxy
