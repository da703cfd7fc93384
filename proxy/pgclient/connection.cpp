#include "proxy/pgclient/connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <charconv>
#include <utility>

namespace pgshift::pgclient {

namespace {

std::string field(const PGresult* res, int code) {
  const char* v = PQresultErrorField(res, code);
  return v ? v : "";
}

std::string trimmed(const char* s) {
  std::string out = s ? s : "";
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void append_keyword(std::string& out, std::string_view key, std::string_view value) {
  if (value.empty()) return;
  if (!out.empty()) out += ' ';
  out.append(key);
  out += "='";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
}

}  // namespace

ConnInfo conninfo_for(const config::Upstream& upstream, std::string_view database) {
  ConnInfo info;
  info.host = upstream.host;
  info.port = upstream.port;
  info.dbname = database.empty() ? upstream.database : std::string(database);
  info.user = upstream.user;
  info.password = upstream.password.value();
  info.sslmode = std::string(config::to_string(upstream.tls.mode));
  info.sslrootcert = upstream.tls.ca_file;
  auto secs = std::chrono::ceil<std::chrono::seconds>(upstream.connect_timeout).count();
  info.connect_timeout_s = secs < 2 ? 2 : static_cast<int>(secs);  // libpq's minimum is 2
  return info;
}

std::string to_conninfo_string(const ConnInfo& info, bool with_password) {
  std::string out;
  append_keyword(out, "host", info.host);
  append_keyword(out, "port", std::to_string(info.port));
  append_keyword(out, "dbname", info.dbname);
  append_keyword(out, "user", info.user);
  if (with_password) append_keyword(out, "password", info.password);
  append_keyword(out, "sslmode", info.sslmode);
  append_keyword(out, "sslrootcert", info.sslrootcert);
  append_keyword(out, "connect_timeout", std::to_string(info.connect_timeout_s));
  append_keyword(out, "application_name", info.application_name);
  append_keyword(out, "options", info.options);
  append_keyword(out, "replication", info.replication);
  return out;
}

std::string describe(const ConnInfo& info) {
  return info.host + ":" + std::to_string(info.port) + "/" + info.dbname + " as " + info.user;
}

Error::Error(std::string message, std::string sqlstate, std::string detail, std::string hint)
    : std::runtime_error(std::move(message)),
      sqlstate_(std::move(sqlstate)),
      detail_(std::move(detail)),
      hint_(std::move(hint)) {}

Result::Result(pg_result* res) : res_(res, PQclear) {}
int Result::rows() const {
  return res_ ? PQntuples(res_.get()) : 0;
}
int Result::columns() const {
  return res_ ? PQnfields(res_.get()) : 0;
}
bool Result::is_null(int row, int column) const {
  return PQgetisnull(res_.get(), row, column) != 0;
}
std::string_view Result::get(int row, int column) const {
  return {PQgetvalue(res_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(res_.get(), row, column))};
}
std::optional<std::string> Result::value(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return std::string(get(row, column));
}
int Result::column(std::string_view name) const {
  return res_ ? PQfnumber(res_.get(), std::string(name).c_str()) : -1;
}
std::string Result::command_tag() const {
  return res_ ? PQcmdStatus(res_.get()) : "";
}
std::uint64_t Result::affected_rows() const {
  const char* s = res_ ? PQcmdTuples(res_.get()) : "";
  std::uint64_t n = 0;
  std::from_chars(s, s + std::char_traits<char>::length(s), n);
  return n;
}

void Connection::Closer::operator()(pg_conn* c) const {
  PQfinish(c);
}

Connection::Connection(Connection&&) noexcept = default;
Connection& Connection::operator=(Connection&&) noexcept = default;
Connection::~Connection() = default;

Connection Connection::connect(const ConnInfo& info) {
  Connection c;
  c.info_ = info;
  c.conn_.reset(PQconnectdb(to_conninfo_string(info).c_str()));
  if (!c.conn_) throw Error("out of memory connecting to " + describe(info));
  if (PQstatus(c.conn_.get()) != CONNECTION_OK) {
    throw Error("could not connect to " + describe(info) + ": " +
                trimmed(PQerrorMessage(c.conn_.get())));
  }
  return c;
}

Result Connection::check(pg_result* raw, std::string_view sql) {
  Result res(raw);
  if (!raw) {
    throw Error(
        "lost the connection to " + describe(info_) + ": " + trimmed(PQerrorMessage(conn_.get())),
        "08006");
  }
  switch (PQresultStatus(raw)) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
    case PGRES_EMPTY_QUERY:
      return res;
    default:
      break;
  }
  std::string sqlstate = field(raw, PG_DIAG_SQLSTATE);
  std::string message = field(raw, PG_DIAG_MESSAGE_PRIMARY);
  if (message.empty()) message = trimmed(PQresultErrorMessage(raw));
  if (message.empty()) message = trimmed(PQerrorMessage(conn_.get()));
  std::string what = describe(info_) + ": " + message;
  if (sqlstate.empty() && PQstatus(conn_.get()) == CONNECTION_BAD) sqlstate = "08006";
  (void)sql;
  throw Error(std::move(what), std::move(sqlstate), field(raw, PG_DIAG_MESSAGE_DETAIL),
              field(raw, PG_DIAG_MESSAGE_HINT));
}

Result Connection::exec(std::string_view sql) {
  return check(PQexec(conn_.get(), std::string(sql).c_str()), sql);
}

Result Connection::exec(std::string_view sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return check(PQexecParams(conn_.get(), std::string(sql).c_str(), static_cast<int>(values.size()),
                            nullptr, values.data(), nullptr, nullptr, 0),
               sql);
}

std::vector<std::pair<std::string, std::string>> Connection::wait_notifications(
    std::chrono::milliseconds timeout) {
  std::vector<std::pair<std::string, std::string>> out;
  auto drain = [&] {
    while (PGnotify* n = PQnotifies(conn_.get())) {
      out.emplace_back(n->relname ? n->relname : "", n->extra ? n->extra : "");
      PQfreemem(n);
    }
  };
  drain();
  if (!out.empty()) return out;
  pollfd pfd{PQsocket(conn_.get()), POLLIN, 0};
  if (pfd.fd < 0) throw Error("no connection to " + describe(info_), "08006");
  int ready = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (ready > 0) {
    if (PQconsumeInput(conn_.get()) == 0) {
      throw Error(
          "lost the connection to " + describe(info_) + ": " + trimmed(PQerrorMessage(conn_.get())),
          "08006");
    }
    drain();
  }
  return out;
}

bool Connection::get_copy_data(std::string& chunk) {
  char* buf = nullptr;
  int n = PQgetCopyData(conn_.get(), &buf, 0);
  if (n > 0) {
    chunk.assign(buf, static_cast<std::size_t>(n));
    PQfreemem(buf);
    return true;
  }
  if (n == -2) {
    throw Error("COPY from " + describe(info_) + " failed: " + trimmed(PQerrorMessage(conn_.get())),
                "08006");
  }
  // -1: the copy is done; its final result says whether it succeeded.
  check(PQgetResult(conn_.get()), "COPY");
  while (PGresult* extra = PQgetResult(conn_.get())) PQclear(extra);
  return false;
}

void Connection::copy_in_start(std::string_view sql) {
  exec(sql);
}

void Connection::put_copy_data(std::string_view data) {
  if (PQputCopyData(conn_.get(), data.data(), static_cast<int>(data.size())) != 1) {
    throw Error("COPY to " + describe(info_) + " failed: " + trimmed(PQerrorMessage(conn_.get())),
                "08006");
  }
}

Result Connection::copy_in_end() {
  if (PQputCopyEnd(conn_.get(), nullptr) != 1) {
    throw Error("COPY to " + describe(info_) + " failed: " + trimmed(PQerrorMessage(conn_.get())),
                "08006");
  }
  Result res = check(PQgetResult(conn_.get()), "COPY");
  while (PGresult* extra = PQgetResult(conn_.get())) PQclear(extra);
  return res;
}

bool Connection::ok() const {
  return conn_ && PQstatus(conn_.get()) == CONNECTION_OK;
}
int Connection::backend_pid() const {
  return PQbackendPID(conn_.get());
}
int Connection::server_version() const {
  return PQserverVersion(conn_.get());
}

std::string quote_ident(std::string_view ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string quote_literal(std::string_view literal) {
  std::string out = "'";
  for (char c : literal) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string text_array(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace pgshift::pgclient
