#include "pool/pool_set.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace pgshift::pool {

std::shared_ptr<PoolSet> PoolSet::create(asio::any_io_executor executor,
                                         std::shared_ptr<PoolRegistry> registry,
                                         ServerPoolOptions options) {
  return std::make_shared<PoolSet>(Private{}, std::move(executor), std::move(registry), options);
}

PoolSet::PoolSet(Private, asio::any_io_executor executor, std::shared_ptr<PoolRegistry> registry,
                 ServerPoolOptions options)
    : executor_(executor),
      registry_(std::move(registry)),
      options_(options),
      timer_(std::move(executor)) {}

PoolSet::~PoolSet() = default;

std::shared_ptr<ServerPool> PoolSet::get(const PoolKey& key,
                                         std::shared_ptr<const UpstreamParams> params,
                                         const config::Pool& settings) {
  if (closed_) return nullptr;
  auto it = pools_.find(key);
  if (it != pools_.end()) {
    it->second->configure(std::move(params), settings);
    return it->second;
  }
  auto shared = registry_->get(key, settings);
  auto pool =
      ServerPool::create(executor_, std::move(shared), std::move(params), settings, options_);
  pools_.emplace(key, pool);
  return pool;
}

std::shared_ptr<ServerPool> PoolSet::find(const PoolKey& key) const {
  auto it = pools_.find(key);
  return it == pools_.end() ? nullptr : it->second;
}

void PoolSet::start() {
  if (started_ || closed_) return;
  started_ = true;
  asio::co_spawn(executor_, maintenance_loop(shared_from_this()), asio::detached);
}

void PoolSet::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  for (auto& [key, pool] : pools_) pool->close();
}

std::vector<PoolStats> PoolSet::stats() const {
  std::vector<PoolStats> out;
  out.reserve(pools_.size());
  for (const auto& [key, pool] : pools_) {
    PoolStats s = pool->shared().describe();
    s += pool->local_stats();
    out.push_back(std::move(s));
  }
  return out;
}

asio::awaitable<void> PoolSet::maintenance_loop(std::shared_ptr<PoolSet> self) {
  try {
    while (!self->closed_) {
      self->timer_.expires_after(self->options_.maintenance_interval);
      co_await self->timer_.async_wait(asio::as_tuple(asio::use_awaitable));
      if (self->closed_) break;
      for (auto& [key, pool] : self->pools_) pool->maintain();
    }
  } catch (...) {
    // Cancelled at shutdown: nothing to clean up, the pools are closed by close().
  }
}

}  // namespace pgshift::pool
