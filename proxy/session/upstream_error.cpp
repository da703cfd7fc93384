#include "proxy/session/upstream_error.hpp"

namespace pgshift::proxy {

namespace {
constexpr std::string_view kCouldNotConnect = "pgshift could not connect to the upstream server";
}  // namespace

ClientError client_error(const pool::AcquireError& e) {
  // 28000: the session could not build the upstream credentials; its message says why.
  const bool plain = e.from_server || e.timed_out || e.sqlstate == "28000";
  ClientError out;
  out.sqlstate = e.sqlstate.empty() ? std::string(kConnectionFailure) : e.sqlstate;
  out.message = plain ? e.message : std::string(kCouldNotConnect);
  if (!plain) out.detail = e.message;
  return out;
}

ClientError client_error(const pool::ConnectError& e) {
  if (e.from_server()) return {e.sqlstate, e.server_message, {}};
  return {std::string(kConnectionFailure), std::string(kCouldNotConnect), e.message};
}

ClientError server_lost(ServerLoss when) {
  ClientError out{std::string(kConnectionFailure), {}, {}};
  switch (when) {
    case ServerLoss::query:
      out.message = "the server connection was lost; the query was not completed";
      out.detail =
          "pgshift lost its connection to the upstream server while the query ran. Any open "
          "transaction was rolled back. The connection is usable for a new transaction.";
      break;
    case ServerLoss::transaction:
      out.message = "the server connection was lost; the transaction was rolled back";
      out.detail =
          "pgshift lost its connection to the upstream server in the middle of the "
          "transaction. The connection is usable for a new transaction.";
      break;
    case ServerLoss::session:
      out.message = "server closed the connection unexpectedly";
      break;
  }
  return out;
}

ClientError upstream_wait_timed_out(std::string_view database, std::string_view route,
                                    std::string_view timeout_ms) {
  return {std::string(kConnectionFailure),
          "could not get a server connection for database \"" + std::string(database) +
              "\" within " + std::string(timeout_ms) + " ms",
          "The upstream did not provide a server connection in time (route \"" +
              std::string(route) + "\", limits.login_timeout_ms)."};
}

}  // namespace pgshift::proxy
