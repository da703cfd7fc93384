#pragma once
// Helpers shared by the pool tests: running a coroutine to completion, loopback ports, and a
// minimal simple-query client over a ServerConnection.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "pool/upstream.hpp"

namespace pgshift::pool::test {

// Runs the coroutine made by `make()` on a fresh io_context until everything is done.
template <class F>
auto run_io(F make) {
  asio::io_context io;
  auto future = asio::co_spawn(io, make(), asio::use_future);
  io.run();
  return future.get();
}

// What a test checks of a ServerConnection, copied out so that the connection (an I/O
// object) can be destroyed before its io_context.
struct ConnInfo {
  bool tls = false;
  char txn_status = 0;
  wire::CancelKey backend_key;
  std::vector<std::pair<std::string, std::string>> parameters;
  std::string parameter(const std::string& name) const;
};
ConnInfo info_of(const ServerConnection& conn);

// A loopback port that nothing listens on (bound to port 0, then released).
std::uint16_t free_port();

struct QueryResult {
  std::vector<std::string> first_column;  // of each DataRow ("" for NULL)
  std::string sqlstate;                   // of the ErrorResponse, if any
  char status = 0;                        // ReadyForQuery status
  error_code ec;                          // I/O or framing error
};

// Sends `sql` as a simple Query (unless send is false: the query was sent already) and reads
// up to ReadyForQuery. Gives up after `timeout` (ec = timed_out).
asio::awaitable<QueryResult> simple_query(ServerConnection& conn, const std::string& sql,
                                          std::chrono::milliseconds timeout, bool send = true);

}  // namespace pgshift::pool::test
