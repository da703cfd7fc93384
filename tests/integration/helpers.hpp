#pragma once
// Small helpers shared by the integration test binaries (header-only): SQLSTATE-bearing
// connection errors, waiting for notifications with a deadline, and raw protocol bytes for
// abuse tests. Protocol layouts: https://www.postgresql.org/docs/15/protocol-message-formats.html
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/support.hpp"
#include "wire/byte_order.hpp"

namespace pgshift::test {

// Connects like connect_error() but with verbose error messages, so a failed login shows its
// SQLSTATE ("FATAL:  28P01: password authentication failed ..."). libpq has no other way to
// report the SQLSTATE of a connection failure. Returns "" on success.
inline std::string connect_error_verbose(
    const std::string& conninfo, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  PGconn* conn = PQconnectStart(conninfo.c_str());
  if (conn == nullptr) return "PQconnectStart: out of memory";
  PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PostgresPollingStatusType status = PGRES_POLLING_WRITING;
  std::string error;
  while (PQstatus(conn) != CONNECTION_BAD && status != PGRES_POLLING_OK &&
         status != PGRES_POLLING_FAILED) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      error = "timed out connecting";
      break;
    }
    pollfd p{PQsocket(conn), static_cast<short>(status == PGRES_POLLING_READING ? POLLIN : POLLOUT),
             0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) {
      error = "poll failed";
      break;
    }
    status = PQconnectPoll(conn);
  }
  if (error.empty() && PQstatus(conn) != CONNECTION_OK) {
    error = PQerrorMessage(conn);
    while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
    if (error.empty()) error = "connection failed";
  }
  PQfinish(conn);
  return error;
}

struct Notification {
  std::string channel;
  std::string payload;
};

// Waits for the next asynchronous notification on conn: poll() on the socket, then
// PQconsumeInput + PQnotifies, until the deadline. nullopt on timeout or a broken connection.
inline std::optional<Notification> wait_for_notification(PGconn* conn,
                                                         std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (PQconsumeInput(conn) == 0) return std::nullopt;
    if (PGnotify* n = PQnotifies(conn)) {
      Notification out{n->relname, n->extra};
      PQfreemem(n);
      return out;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd p{PQsocket(conn), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return std::nullopt;
  }
}

struct CancelOutcome {
  bool started = false;                  // the query was seen running upstream
  std::chrono::milliseconds elapsed{0};  // PQcancel call until the query returned
  std::string sqlstate;                  // of the cancelled query's error
  std::string error;
};

// Runs "SELECT pg_sleep(30)" (tagged with a comment) on conn in a thread, waits until
// `upstream` shows it running, cancels it with PQcancel (a CancelRequest to whatever conn is
// connected to, i.e. pgshift) and measures how long the query takes to return.
inline CancelOutcome cancel_pg_sleep(PgConnection& conn, const PgCluster& upstream,
                                     const std::string& tag) {
  using namespace std::chrono_literals;
  CancelOutcome out;
  PGcancel* cancel = PQgetCancel(conn.native());
  if (cancel == nullptr) return out;
  const std::string query = "SELECT pg_sleep(30) /* " + tag + " */";
  std::atomic<bool> done{false};
  std::thread worker([&] {
    try {
      conn.exec(query);
    } catch (const PgError& e) {
      out.sqlstate = e.sqlstate();
      out.error = e.what();
    }
    done = true;
  });
  out.started = wait_until(
      [&] {
        return upstream
                   .exec(
                       "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                       "query = " +
                       conn.quote_literal(query))
                   .scalar() == "1";
      },
      10s, "pg_sleep to run upstream");
  char buffer[256];
  const auto start = std::chrono::steady_clock::now();
  if (PQcancel(cancel, buffer, sizeof buffer) != 1) out.error = buffer;
  wait_until([&] { return done.load(); }, 35s, "the cancelled query to return");
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  worker.join();
  PQfreeCancel(cancel);
  return out;
}

// ---- raw protocol bytes ----

inline std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

inline std::uint32_t read_be32(const std::string& s, std::size_t at) {
  return wire::read_be32(reinterpret_cast<const std::uint8_t*>(s.data()) + at);
}

// StartupMessage, protocol 3.0.
inline std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body = be32(196608);
  for (const auto& [k, v] : params) body += k + '\0' + v + '\0';
  body += '\0';
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

inline std::string ssl_request() {
  return be32(8) + be32(80877103);
}

// A typed frontend message: type byte, length, body.
inline std::string frontend_message(char type, const std::string& body) {
  return std::string(1, type) + be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

struct BackendMessage {
  char type = 0;
  std::string body;
};

// Splits complete backend messages off the front of bytes (an incomplete tail is ignored).
inline std::vector<BackendMessage> parse_backend_messages(const std::string& bytes) {
  std::vector<BackendMessage> out;
  std::size_t at = 0;
  while (bytes.size() - at >= 5) {
    const std::uint32_t length = read_be32(bytes, at + 1);
    if (length < 4 || bytes.size() - at - 1 < length) break;
    out.push_back({bytes[at], bytes.substr(at + 5, length - 4)});
    at += 1 + length;
  }
  return out;
}

// Fields of an ErrorResponse / NoticeResponse body: 'S' severity, 'C' SQLSTATE, 'M' message...
inline std::map<char, std::string> error_fields(const std::string& body) {
  std::map<char, std::string> fields;
  std::size_t at = 0;
  while (at < body.size() && body[at] != '\0') {
    const char code = body[at++];
    const std::size_t end = body.find('\0', at);
    if (end == std::string::npos) break;
    fields[code] = body.substr(at, end - at);
    at = end + 1;
  }
  return fields;
}

// The first ErrorResponse in bytes, if any.
inline std::optional<std::map<char, std::string>> first_error(const std::string& bytes) {
  for (const auto& m : parse_backend_messages(bytes)) {
    if (m.type == 'E') return error_fields(m.body);
  }
  return std::nullopt;
}

}  // namespace pgshift::test
