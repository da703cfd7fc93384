#pragma once
// The process: one io_context per I/O thread, sessions assigned round-robin and pinned to
// their thread for life; the listener, signals and reloads run on thread 0.
// SIGTERM/SIGINT: stop accepting, let sessions finish their transactions (each closes at
// its next idle ReadyForQuery) up to shutdown_timeout, then close the rest and exit 0.
// SIGHUP: reload the config file and secrets; new sessions use them, live ones are kept.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <memory>
#include <string>
#include <vector>

#include "pool/pool_set.hpp"
#include "proxy/runtime/runtime.hpp"

namespace pgshift::migrate {
class LagMonitors;
}
namespace pgshift::mirror {
class MirrorService;
}

namespace pgshift::proxy {

class ClientSession;
class AdminServer;
class PoolLogger;

class Server {
 public:
  Server(std::shared_ptr<Runtime> runtime, std::string config_path);
  ~Server();
  // Binds the listener (throws with a clear message if it cannot), runs until shutdown.
  // Returns the process exit code.
  int run();

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> signal_loop();
  asio::awaitable<void> drain();
  // Calls fn for every session, on each session's own thread (ThreadSessions); returns the
  // number of sessions it was called for.
  asio::awaitable<std::size_t> for_each_session(void (*fn)(ClientSession&));
  void reload();

  std::shared_ptr<Runtime> runtime_;
  std::string config_path_;
  std::vector<std::unique_ptr<asio::io_context>> contexts_;
  std::shared_ptr<pool::PoolRegistry> pool_registry_;
  std::vector<std::shared_ptr<pool::PoolSet>> pool_sets_;  // one per context, same index
  std::unique_ptr<asio::ip::tcp::acceptor> acceptor_;
  std::unique_ptr<asio::signal_set> signals_;
  std::shared_ptr<AdminServer> admin_;                  // null when admin.enabled is false
  std::shared_ptr<PoolLogger> pool_logger_;             // on io_context 0; started by run()
  std::unique_ptr<migrate::LagMonitors> lag_monitors_;  // sync.mode logical routes
  std::shared_ptr<mirror::MirrorService> mirror_;       // sync.mode mirror routes
  std::uint64_t next_session_id_ = 1;                   // accept_loop only
  std::size_t next_context_ = 0;
};

}  // namespace pgshift::proxy
