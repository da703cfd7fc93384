#include "pg_connection.hpp"

#include <utility>

namespace pgshift::test {

namespace {

std::string with_connect_timeout(const std::string& conninfo) {
  if (conninfo.find("connect_timeout") != std::string::npos) return conninfo;
  return conninfo + " connect_timeout=10";
}

void collect_notice(void* arg, const PGresult* result) {
  auto* notices = static_cast<std::vector<std::string>*>(arg);
  notices->emplace_back(PQresultErrorMessage(result));
}

std::string trim_newline(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

const std::string& QueryResult::at(std::size_t row, std::size_t column) const {
  if (row >= rows.size() || column >= rows[row].size()) {
    throw std::out_of_range("QueryResult::at(" + std::to_string(row) + ", " +
                            std::to_string(column) + ") of " + std::to_string(rows.size()) +
                            " rows (" + command_status + ")");
  }
  const auto& value = rows[row][column];
  if (!value) throw std::runtime_error("QueryResult::at: value is NULL");
  return *value;
}

PgConnection::PgConnection(const std::string& conninfo) {
  conn_ = PQconnectdb(with_connect_timeout(conninfo).c_str());
  if (conn_ == nullptr) throw PgError("PQconnectdb: out of memory", "");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = trim_newline(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    throw PgError("connection failed: " + message, "");
  }
  PQsetNoticeReceiver(conn_, collect_notice, &notices_);
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

PgConnection::PgConnection(PgConnection&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)), notices_(std::move(other.notices_)) {
  if (conn_ != nullptr) PQsetNoticeReceiver(conn_, collect_notice, &notices_);
}

PgConnection& PgConnection::operator=(PgConnection&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(conn_);
    conn_ = std::exchange(other.conn_, nullptr);
    notices_ = std::move(other.notices_);
    if (conn_ != nullptr) PQsetNoticeReceiver(conn_, collect_notice, &notices_);
  }
  return *this;
}

QueryResult PgConnection::take_result(PGresult* result, const std::string& sql) {
  if (result == nullptr) {
    throw PgError("query failed: " + trim_newline(PQerrorMessage(conn_)) + "\n  in: " + sql, "");
  }
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY) {
    const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
    std::string message = trim_newline(PQresultErrorMessage(result));
    std::string sqlstate = state ? state : "";
    PQclear(result);
    throw PgError(message + "\n  in: " + sql, sqlstate);
  }
  QueryResult out;
  out.command_status = PQcmdStatus(result);
  const int columns = PQnfields(result);
  for (int c = 0; c < columns; ++c) out.columns.emplace_back(PQfname(result, c));
  const int rows = PQntuples(result);
  out.rows.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    Row row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(result, r, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(PQgetvalue(result, r, c),
                                     static_cast<std::size_t>(PQgetlength(result, r, c))));
      }
    }
    out.rows.push_back(std::move(row));
  }
  PQclear(result);
  return out;
}

QueryResult PgConnection::exec(const std::string& sql) {
  return take_result(PQexec(conn_, sql.c_str()), sql);
}

QueryResult PgConnection::exec_params(const std::string& sql,
                                      const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  return take_result(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0),
                     sql);
}

std::string PgConnection::quote_literal(std::string_view value) const {
  char* quoted = PQescapeLiteral(conn_, value.data(), value.size());
  if (quoted == nullptr) throw PgError(trim_newline(PQerrorMessage(conn_)), "");
  std::string result(quoted);
  PQfreemem(quoted);
  return result;
}

std::string PgConnection::quote_identifier(std::string_view value) const {
  char* quoted = PQescapeIdentifier(conn_, value.data(), value.size());
  if (quoted == nullptr) throw PgError(trim_newline(PQerrorMessage(conn_)), "");
  std::string result(quoted);
  PQfreemem(quoted);
  return result;
}

std::string connect_error(const std::string& conninfo) {
  PGconn* conn = PQconnectdb(with_connect_timeout(conninfo).c_str());
  std::string error;
  if (conn == nullptr) {
    error = "PQconnectdb: out of memory";
  } else if (PQstatus(conn) != CONNECTION_OK) {
    error = trim_newline(PQerrorMessage(conn));
    if (error.empty()) error = "connection failed";
  }
  if (conn != nullptr) PQfinish(conn);
  return error;
}

std::string conninfo_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

}  // namespace pgshift::test
