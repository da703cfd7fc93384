#pragma once
// The passthrough relay (relay/passthrough.cpp): session mode on a route without a target, and
// replication connections. Chosen once, at login (ClientSession::run); it uses the session's
// client, server and end bookkeeping, and nothing of the multiplexed relay.
// Thread-safety: on the session's thread only.
#include <boost/asio/awaitable.hpp>
#include <memory>

namespace pgshift::proxy {

class ClientSession;

class PassthroughRelay {
 public:
  // Runs the relay: the server direction as its own coroutine (it keeps the session alive
  // until it has said goodbye and given the server back), the client direction in this one.
  static boost::asio::awaitable<void> run(std::shared_ptr<ClientSession> session);

 private:
  static boost::asio::awaitable<void> client_to_server(ClientSession& s);
  static boost::asio::awaitable<void> server_to_client(std::shared_ptr<ClientSession> self);
};

}  // namespace pgshift::proxy
