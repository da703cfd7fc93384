#include "pool/pool_shared.hpp"

#include <boost/asio/post.hpp>
#include <functional>
#include <utility>

#include "pool/server_pool.hpp"

namespace pgshift::pool {

std::string_view to_string(UpstreamSide side) {
  return side == UpstreamSide::source ? "source" : "target";
}

std::size_t PoolKeyHash::operator()(const PoolKey& key) const noexcept {
  std::hash<std::string> h;
  std::size_t seed = h(key.route);
  // boost::hash_combine's mixing, so that swapped fields hash differently.
  for (std::size_t v :
       {h(key.database), h(key.user), h(key.params), static_cast<std::size_t>(key.side)}) {
    seed ^= v + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  }
  return seed;
}

std::string to_string(const PoolKey& key) {
  return key.route + "/" + std::string(to_string(key.side)) + "/" + key.database + "/" + key.user;
}

PoolShared::PoolShared(PoolKey key, const config::Pool& settings)
    : key_(std::move(key)),
      size_(settings.size),
      reserve_(settings.reserve),
      mode_(settings.mode) {}

void PoolShared::configure(const config::Pool& settings) noexcept {
  size_.store(settings.size, std::memory_order_relaxed);
  reserve_.store(settings.reserve, std::memory_order_relaxed);
  mode_.store(settings.mode, std::memory_order_relaxed);
}

bool PoolShared::try_take_slot(bool allow_reserve) noexcept {
  const int limit = size() + (allow_reserve ? reserve() : 0);
  int current = total_.load();
  while (current < limit) {
    if (total_.compare_exchange_weak(current, current + 1)) return true;
  }
  return false;
}

void PoolShared::return_slot() noexcept {
  total_.fetch_sub(1);
}

void PoolShared::attach(const std::shared_ptr<ServerPool>& pool, asio::any_io_executor executor) {
  std::lock_guard lock(mu_);
  members_.push_back({pool.get(), pool, std::move(executor)});
}

void PoolShared::detach(const ServerPool* pool, const PoolStats& final_counters) {
  std::lock_guard lock(mu_);
  std::erase_if(members_, [pool](const Member& m) { return m.pool == pool; });
  retired_ += final_counters;
  // Gauges of a pool that is gone are zero by definition.
  retired_.idle = retired_.active = retired_.waiting = retired_.connecting = retired_.closing = 0;
}

std::size_t PoolShared::attached() const {
  std::lock_guard lock(mu_);
  return members_.size();
}

bool PoolShared::wake_waiting_thread(const ServerPool* self) {
  auto to = waiting_thread(self);
  if (!to) return false;
  // Runs on the pool's own thread; the pool may be gone by then, hence the weak_ptr (locked
  // and released on that same thread, which is the only one that destroys it).
  asio::post(to->executor, [weak = std::move(to->pool)] {
    if (auto pool = weak.lock()) pool->on_slot_available();
  });
  return true;
}

std::optional<PoolShared::Handover> PoolShared::waiting_thread(const ServerPool* self) {
  std::lock_guard lock(mu_);
  const std::size_t n = members_.size();
  for (std::size_t i = 0; i < n; ++i) {
    const Member& m = members_[(next_ + i) % n];
    if (m.pool == self || m.pool->waiting_count() == 0) continue;
    next_ = (next_ + i + 1) % n;
    return Handover{m.weak, m.executor};
  }
  return std::nullopt;
}

bool PoolShared::request_handover(const ServerPool* self) {
  std::lock_guard lock(mu_);
  for (const Member& m : members_) {
    if (m.pool == self || m.pool->idle_count() == 0) continue;
    asio::post(m.executor, [weak = m.weak] {
      if (auto pool = weak.lock()) pool->on_handover_request();
    });
    return true;
  }
  return false;
}

void PoolShared::drop_idle_everywhere() {
  std::lock_guard lock(mu_);
  for (const Member& m : members_) {
    asio::post(m.executor, [weak = m.weak] {
      if (auto pool = weak.lock()) pool->drop_idle();
    });
  }
}

PoolStats PoolShared::describe() const {
  PoolStats out;
  out.route = key_.route;
  out.side = std::string(to_string(key_.side));
  out.database = key_.database;
  out.user = key_.user;
  out.mode = mode() == config::PoolMode::transaction ? "transaction" : "session";
  out.size = size();
  out.reserve = reserve();
  out.total = total();
  return out;
}

PoolStats PoolShared::stats() const {
  PoolStats out = describe();
  std::lock_guard lock(mu_);
  out += retired_;
  for (const Member& m : members_) out += m.pool->local_stats();
  out.total = total();
  return out;
}

std::shared_ptr<PoolShared> PoolRegistry::get(const PoolKey& key, const config::Pool& settings) {
  std::lock_guard lock(mu_);
  auto& slot = pools_[key];
  if (!slot) slot = std::make_shared<PoolShared>(key, settings);
  return slot;
}

std::shared_ptr<PoolShared> PoolRegistry::find(const PoolKey& key) const {
  std::lock_guard lock(mu_);
  auto it = pools_.find(key);
  return it == pools_.end() ? nullptr : it->second;
}

std::size_t PoolRegistry::drop_idle(std::string_view database) const {
  std::vector<std::shared_ptr<PoolShared>> matching;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, shared] : pools_) {
      if (key.database == database) matching.push_back(shared);
    }
  }
  for (const auto& shared : matching) shared->drop_idle_everywhere();
  return matching.size();
}

std::vector<PoolStats> PoolRegistry::stats() const {
  std::vector<std::shared_ptr<PoolShared>> pools;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, shared] : pools_) pools.push_back(shared);
  }
  std::vector<PoolStats> out;
  out.reserve(pools.size());
  for (const auto& shared : pools) out.push_back(shared->stats());
  return out;
}

}  // namespace pgshift::pool
