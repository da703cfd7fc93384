#pragma once
// A blocking libpq connection for test setup and assertions (not for the proxy's data path).
// Every error throws PgError carrying the SQLSTATE. Notices are collected, not printed.
// Not thread-safe: one connection per thread.
#include <libpq-fe.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::test {

class PgError : public std::runtime_error {
 public:
  PgError(const std::string& message, std::string sqlstate)
      : std::runtime_error(message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }  // empty for connection failures

 private:
  std::string sqlstate_;
};

using Row = std::vector<std::optional<std::string>>;  // nullopt = SQL NULL

struct QueryResult {
  std::vector<std::string> columns{};
  std::vector<Row> rows{};
  std::string command_status{};  // "SELECT 3", "INSERT 0 1", ...

  std::size_t size() const { return rows.size(); }
  // The value at (row, column); throws if out of range or NULL.
  const std::string& at(std::size_t row, std::size_t column) const;
  const std::string& scalar() const { return at(0, 0); }
};

class PgConnection {
 public:
  // Connects (blocking, connect_timeout=10 unless conninfo sets one). Throws PgError.
  explicit PgConnection(const std::string& conninfo);
  ~PgConnection();
  PgConnection(PgConnection&& other) noexcept;
  PgConnection& operator=(PgConnection&& other) noexcept;
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one or more statements (simple query protocol); returns the last result.
  QueryResult exec(const std::string& sql);
  // Extended protocol with text parameters ($1, $2, ...).
  QueryResult exec_params(const std::string& sql, const std::vector<std::string>& params);
  std::string scalar(const std::string& sql) { return exec(sql).scalar(); }

  std::string quote_literal(std::string_view value) const;
  std::string quote_identifier(std::string_view value) const;
  int backend_pid() const { return PQbackendPID(conn_); }
  bool ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
  const std::vector<std::string>& notices() const { return notices_; }
  PGconn* native() { return conn_; }

 private:
  QueryResult take_result(PGresult* result, const std::string& sql);

  PGconn* conn_ = nullptr;
  std::vector<std::string> notices_;
};

// Tries to connect; returns "" on success, else libpq's error message (e.g. "...password
// authentication failed for user ..."). For negative tests.
std::string connect_error(const std::string& conninfo);

// Quotes a conninfo value: 'it''s' style per libpq (backslash-escaped ' and \).
std::string conninfo_quote(std::string_view value);

}  // namespace pgshift::test
