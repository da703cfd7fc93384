#pragma once
// A throwaway PostgreSQL 15 cluster for the upstream tests (until tests/support/ lands):
// initdb with SCRAM, TLS with a test CA (server cert SAN = localhost, 127.0.0.1), loopback
// port chosen at start, users for SCRAM, md5 and cleartext auth. Runs the server binaries
// as the `postgres` OS user when the test runs as root (initdb refuses root).
#include <cstdint>
#include <string>

namespace pgshift::pool::test {

class PgCluster {
 public:
  // Throws std::runtime_error (with the command and its output) on any failure.
  PgCluster();
  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  std::uint16_t port() const { return port_; }
  const std::string& ca_file() const { return ca_file_; }         // signed the server cert
  const std::string& wrong_ca_file() const { return wrong_ca_; }  // an unrelated CA
  // Runs SQL as the superuser over the Unix socket; returns psql's unaligned output.
  std::string psql(const std::string& sql) const;

  // Roles created by the constructor.
  static constexpr const char* scram_user = "scram_user";
  static constexpr const char* scram_password = "scram-secret-1";
  static constexpr const char* md5_user = "md5_user";
  static constexpr const char* md5_password = "md5-secret-2";
  static constexpr const char* clear_user = "clear_user";
  static constexpr const char* clear_password = "clear-secret-3";

 private:
  std::string as_server_user(const std::string& command) const;
  void stop() noexcept;

  std::string dir_, data_, bin_ = "/usr/lib/postgresql/15/bin", ca_file_, wrong_ca_;
  std::uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace pgshift::pool::test
