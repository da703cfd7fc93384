#pragma once
// One client connection: startup (TLS negotiation, cancel requests), authentication, route
// selection, upstream connection, then relaying in session mode. Lives on one io_context
// thread for its whole life (no strand needed); every coroutine of a session runs there.
// The client stream has exactly one writer at a time: the login code, then the
// server-to-client relay direction.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "pool/pool_set.hpp"
#include "pool/server_pool.hpp"
#include "pool/upstream.hpp"
#include "proxy/cancel_registry.hpp"
#include "proxy/io_buffer.hpp"
#include "proxy/metrics.hpp"
#include "proxy/route_select.hpp"
#include "proxy/runtime.hpp"
#include "proxy/txn_tracker.hpp"

namespace pgshift::proxy {

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  ClientSession(Runtime& runtime, std::shared_ptr<pool::PoolSet> pools, pool::tcp::socket socket,
                std::uint64_t id);
  ~ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // Runs the session to its end. Spawn with co_spawn on the socket's executor.
  asio::awaitable<void> run();
  // Asks the session to end at its next transaction boundary (SIGTERM drain). Must be
  // called on the session's executor.
  void request_drain();
  asio::any_io_executor get_executor() { return client_.get_executor(); }

 private:
  enum class EndReason {
    none,
    client_closed,
    client_protocol_error,
    server_closed,
    server_protocol_error,
    drain
  };
  static std::string_view to_string(EndReason r);

  asio::awaitable<bool> login();
  asio::awaitable<bool> negotiate_startup(wire::StartupPacket& startup);
  asio::awaitable<void> handle_cancel_request(wire::CancelKey key);
  asio::awaitable<void> client_to_server();
  asio::awaitable<void> server_to_client();
  asio::awaitable<bool> attach_server(const RouteRuntime& route);
  asio::awaitable<void> release_server(bool server_ok);
  void end(EndReason reason, std::string detail = {});
  void start_login_timer();

  Runtime& runtime_;
  SnapshotPtr snap_;
  std::uint64_t id_;
  std::string peer_;
  pool::Stream client_;
  IoBuffer client_buf_;
  std::shared_ptr<pool::PoolSet> pools_;
  pool::PooledConnection pooled_;                   // pooled server (normal sessions)
  std::unique_ptr<pool::ServerConnection> direct_;  // replication: never pooled
  pool::ServerConnection* server_ = nullptr;        // whichever of the two is in use
  std::shared_ptr<const pool::UpstreamParams> upstream_;
  std::shared_ptr<CancelSlot> cancel_slot_;
  wire::CancelKey client_key_{};
  bool registered_ = false;
  ClientIdentity identity_;
  std::string route_name_;
  TxnTracker tracker_;
  wire::Limits limits_;
  asio::steady_timer login_timer_;
  EndReason end_reason_ = EndReason::none;
  std::string end_detail_;
  bool drain_requested_ = false;
  const RouteMetrics* route_metrics_ = nullptr;  // set once the client is logged in
  void count_login_failure(LoginFailure reason) { metrics().login_failures(reason).Increment(); }
};

}  // namespace pgshift::proxy
