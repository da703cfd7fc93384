#pragma once
// The server pools of one I/O thread: PoolKey -> that thread's ServerPool, plus the
// maintenance coroutine that runs ServerPool::maintain() on each of them every
// options.maintenance_interval (docs/pooling.md).
//
// Why per thread: sessions are pinned to one io_context thread and a server connection's
// socket belongs to its io_context, so a per-thread pool needs no lock and no cross-thread
// hand-off on the hot path; PoolShared keeps the per-key limit global.
//
// Thread-safety: none. Create, use and close a PoolSet on its own thread (the executor's);
// stats() may be read from any thread through the PoolRegistry instead.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <unordered_map>
#include <vector>

#include "pool/pool_shared.hpp"
#include "pool/server_pool.hpp"

namespace pgshift::pool {

class PoolSet : public std::enable_shared_from_this<PoolSet> {
  struct Private {};

 public:
  static std::shared_ptr<PoolSet> create(asio::any_io_executor executor,
                                         std::shared_ptr<PoolRegistry> registry,
                                         ServerPoolOptions options = {});
  PoolSet(Private, asio::any_io_executor executor, std::shared_ptr<PoolRegistry> registry,
          ServerPoolOptions options);
  ~PoolSet();
  PoolSet(const PoolSet&) = delete;
  PoolSet& operator=(const PoolSet&) = delete;

  // This thread's pool for `key`, created on first use (and its PoolShared in the registry).
  // Later calls pass the current params and settings on (ServerPool::configure), so a reload
  // reaches the pool; sessions may keep the returned pointer for their lifetime.
  // Returns nullptr after close().
  std::shared_ptr<ServerPool> get(const PoolKey& key, std::shared_ptr<const UpstreamParams> params,
                                  const config::Pool& settings);
  std::shared_ptr<ServerPool> find(const PoolKey& key) const;

  // Starts the maintenance coroutine. Idempotent.
  void start();
  // Stops maintenance and closes every pool (ServerPool::close). Idempotent.
  void close();

  // This thread's part of each pool.
  std::vector<PoolStats> stats() const;
  const std::shared_ptr<PoolRegistry>& registry() const noexcept { return registry_; }
  const asio::any_io_executor& executor() const noexcept { return executor_; }

 private:
  static asio::awaitable<void> maintenance_loop(std::shared_ptr<PoolSet> self);

  asio::any_io_executor executor_;
  std::shared_ptr<PoolRegistry> registry_;
  ServerPoolOptions options_;
  std::unordered_map<PoolKey, std::shared_ptr<ServerPool>, PoolKeyHash> pools_;
  asio::steady_timer timer_;
  bool started_ = false;
  bool closed_ = false;
};

}  // namespace pgshift::pool
