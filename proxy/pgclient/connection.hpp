#pragma once
// The only code that links libpq (DESIGN.md §2): a small RAII wrapper for the control plane,
// sync, verify and cutover. A Connection blocks the calling thread while it connects or runs
// a statement, so it is used only by CLI commands (`pgshift sync`, `verify`) and by threads
// of their own (the control thread), never by an I/O thread of the data path.
//
// Errors are thrown as pgclient::Error with the server's SQLSTATE (empty when the failure is
// not a server error, e.g. a refused connection) and its message, detail and hint, so callers
// can name the object and the fix.
//
// Thread-safety: a Connection is used by one thread at a time.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"

struct pg_conn;
struct pg_result;

namespace pgshift::pgclient {

// Where and how to connect; every field maps to one libpq keyword.
struct ConnInfo {
  std::string host;
  std::uint16_t port = 5432;
  std::string dbname, user, password;
  std::string sslmode = "disable";  // disable | require | verify-ca | verify-full
  std::string sslrootcert;
  int connect_timeout_s = 5;
  std::string application_name = "pgshift";
  std::string options;      // libpq "options" (e.g. "-c lock_timeout=1000")
  std::string replication;  // libpq "replication" ("database": a walsender connection)
};

// An upstream of the config as libpq settings. `database` empty: upstream.database.
// The password is the upstream's resolved secret (fixed credentials only).
ConnInfo conninfo_for(const config::Upstream& upstream, std::string_view database = {});

// keyword='value' conninfo string with libpq quoting. With `with_password` false the
// password is left out (for logs and for subscriptions that use a passfile).
std::string to_conninfo_string(const ConnInfo& info, bool with_password = true);

// "host:port/dbname as user" for messages; never the password.
std::string describe(const ConnInfo& info);

class Error : public std::runtime_error {
 public:
  Error(std::string message, std::string sqlstate = {}, std::string detail = {},
        std::string hint = {});
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& detail() const { return detail_; }
  const std::string& hint() const { return hint_; }

 private:
  std::string sqlstate_, detail_, hint_;
};

// The rows of one statement, all values in text form.
class Result {
 public:
  Result() = default;
  explicit Result(pg_result* res);
  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string_view get(int row, int column) const;  // "" for NULL
  std::optional<std::string> value(int row, int column) const;
  int column(std::string_view name) const;  // -1 when absent
  std::string command_tag() const;          // e.g. "UPDATE 3"
  std::uint64_t affected_rows() const;      // from the command tag, 0 if none

 private:
  std::shared_ptr<pg_result> res_;
};

using Param = std::optional<std::string>;  // nullopt = SQL NULL

class Connection {
 public:
  // Connects or throws Error naming the server (describe(info)) and libpq's reason.
  static Connection connect(const ConnInfo& info);

  Connection() = default;
  Connection(Connection&&) noexcept;
  Connection& operator=(Connection&&) noexcept;
  ~Connection();

  // Runs one or more statements (simple protocol); returns the last result.
  Result exec(std::string_view sql);
  // One statement with text parameters ($1, $2...).
  Result exec(std::string_view sql, const std::vector<Param>& params);

  // LISTEN support: waits up to `timeout` for the socket to become readable, consumes
  // input, and returns the channel payloads of the notifications received (may be empty).
  std::vector<std::pair<std::string, std::string>> wait_notifications(
      std::chrono::milliseconds timeout);

  // COPY ... TO STDOUT: calls `sink` with each chunk until the copy ends.
  template <typename Sink>
  void copy_out(std::string_view sql, Sink&& sink);
  // COPY ... FROM STDIN: sends `data` as one chunk (call put_copy_data repeatedly for more).
  void copy_in_start(std::string_view sql);
  void put_copy_data(std::string_view data);
  Result copy_in_end();

  bool ok() const;
  int backend_pid() const;
  int server_version() const;  // e.g. 150004
  pg_conn* raw() const { return conn_.get(); }
  const ConnInfo& info() const { return info_; }

 private:
  // Returns false at the end of a COPY OUT, else fills `chunk`.
  bool get_copy_data(std::string& chunk);
  Result check(pg_result* res, std::string_view sql);

  struct Closer {
    void operator()(pg_conn* c) const;
  };
  std::unique_ptr<pg_conn, Closer> conn_;
  ConnInfo info_;
};

template <typename Sink>
void Connection::copy_out(std::string_view sql, Sink&& sink) {
  exec(sql);  // enters COPY OUT; check() accepts PGRES_COPY_OUT
  std::string chunk;
  while (get_copy_data(chunk)) sink(std::string_view(chunk));
}

// Quotes an identifier ("my table") or a literal ('it''s') the way PostgreSQL does.
std::string quote_ident(std::string_view ident);
std::string quote_literal(std::string_view literal);
// A text[] value in PostgreSQL's array syntax ({"a","b \"c\""}), to pass as a parameter
// ($1::text[]): every element quoted, so none is read as NULL or split.
std::string text_array(const std::vector<std::string>& items);

}  // namespace pgshift::pgclient
