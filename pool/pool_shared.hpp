#pragma once
// What the per-thread pools of one pool key share across I/O threads (docs/pooling.md):
//  - the slot count that enforces `size` (+ `reserve`) over all threads, with atomics only;
//  - the number of waiting acquires, so that a thread freeing a slot knows whether another
//    thread needs it;
//  - a registry of the thread pools (mutex-protected, used only on slow paths: waking a
//    thread with waiters, finding a thread to hand a connection to or to ask for an idle
//    one, stats). A thread whose own pool serves it never takes the mutex.
// PoolRegistry maps pool keys to their PoolShared for the whole process.
//
// Thread-safety: every member of PoolShared and PoolRegistry may be called from any thread.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "pool/pool_stats.hpp"

namespace pgshift::pool {

namespace asio = boost::asio;
class ServerPool;

enum class UpstreamSide : std::uint8_t { source, target };
std::string_view to_string(UpstreamSide side);

// One pool per (route, side, upstream database, upstream user): connections of one key are
// interchangeable (same server, same database, same credentials).
struct PoolKey {
  std::string route;
  UpstreamSide side = UpstreamSide::source;
  std::string database;
  std::string user;
  // pool_key_parameters() of the clients' startup parameters: the values of those a backend
  // takes only at start (`options`...) and the names of the others, whose values are set per
  // hand-out (pool/server_params.hpp), so application_name & co. do not multiply pools.
  std::string params{};

  bool operator==(const PoolKey&) const = default;
  auto operator<=>(const PoolKey&) const = default;
};
struct PoolKeyHash {
  std::size_t operator()(const PoolKey& key) const noexcept;
};
std::string to_string(const PoolKey& key);  // "route/side/database/user"

class PoolShared {
 public:
  PoolShared(PoolKey key, const config::Pool& settings);
  PoolShared(const PoolShared&) = delete;
  PoolShared& operator=(const PoolShared&) = delete;

  const PoolKey& key() const noexcept { return key_; }

  // size, reserve and mode may change on reload; connections over a smaller size are closed
  // as they are released or found idle.
  void configure(const config::Pool& settings) noexcept;
  int size() const noexcept { return size_.load(std::memory_order_relaxed); }
  int reserve() const noexcept { return reserve_.load(std::memory_order_relaxed); }
  config::PoolMode mode() const noexcept { return mode_.load(std::memory_order_relaxed); }

  // ---- slots: one per server connection open or being opened, on any thread ----
  // Takes a slot if fewer than size (size + reserve when allow_reserve) are taken.
  bool try_take_slot(bool allow_reserve) noexcept;
  // Gives a slot back. The caller must then look for a waiter to serve (ServerPool does).
  void return_slot() noexcept;
  int total() const noexcept { return total_.load(); }

  // ---- waiters ----
  // A waiter is counted *before* its last try_take_slot(), and a slot is returned *before*
  // waiters() is read (both sequentially consistent), so a slot freed on one thread while a
  // client starts waiting on another is never missed by both.
  void add_waiter() noexcept { waiters_.fetch_add(1); }
  void remove_waiter() noexcept { waiters_.fetch_sub(1); }
  int waiters() const noexcept { return waiters_.load(); }

  // ---- registry of the per-thread pools (slow paths only) ----
  void attach(const std::shared_ptr<ServerPool>& pool, asio::any_io_executor executor);
  // Called by ~ServerPool; `final_counters` keep the totals of a pool that goes away.
  void detach(const ServerPool* pool, const PoolStats& final_counters);
  std::size_t attached() const;
  // Posts ServerPool::on_slot_available() to the next (round robin) other thread whose pool
  // has waiters. Returns false if there is none.
  bool wake_waiting_thread(const ServerPool* self);
  // Where a connection handed over by `self` goes: the next (round robin) other thread
  // whose pool has waiters. Empty if there is none.
  struct Handover {
    std::weak_ptr<ServerPool> pool;
    asio::any_io_executor executor;
  };
  std::optional<Handover> waiting_thread(const ServerPool* self);
  // Posts ServerPool::on_handover_request() to one other thread whose pool has idle
  // connections, so that it hands one over to a thread with waiters. False if there is none.
  bool request_handover(const ServerPool* self);
  // Posts ServerPool::drop_idle() to every thread's pool of this key.
  void drop_idle_everywhere();

  // This key's pools summed over every thread.
  PoolStats stats() const;
  // Only identity, configuration and total filled in (for one thread's view).
  PoolStats describe() const;

 private:
  struct Member {
    ServerPool* pool;
    std::weak_ptr<ServerPool> weak;
    asio::any_io_executor executor;
  };

  const PoolKey key_;
  std::atomic<int> size_;
  std::atomic<int> reserve_;
  std::atomic<config::PoolMode> mode_;
  std::atomic<int> total_{0};
  std::atomic<int> waiters_{0};

  mutable std::mutex mu_;
  std::vector<Member> members_;  // guarded by mu_
  std::size_t next_ = 0;         // round-robin start for wake-ups; guarded by mu_
  PoolStats retired_;            // counters of detached pools; guarded by mu_
};

// Process-wide map from pool key to its PoolShared (created on first use). Thread-safe; a
// PoolSet looks a key up here once per thread and keeps the pointer.
class PoolRegistry {
 public:
  std::shared_ptr<PoolShared> get(const PoolKey& key, const config::Pool& settings);
  std::shared_ptr<PoolShared> find(const PoolKey& key) const;
  // Every pool's stats, ordered by key.
  std::vector<PoolStats> stats() const;
  // Closes the idle connections to upstream database `database` in every pool (any route,
  // side or user), on every thread: each thread's pool does it on its own executor, soon
  // after this returns. Returns how many pool keys matched.
  std::size_t drop_idle(std::string_view database) const;

 private:
  mutable std::mutex mu_;
  std::map<PoolKey, std::shared_ptr<PoolShared>> pools_;
};

}  // namespace pgshift::pool
