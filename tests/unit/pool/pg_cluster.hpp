#pragma once
// The upstream tests' cluster: tests/support's PgCluster with TLS from a test CA (server
// cert SAN = localhost, 127.0.0.1) and one user per password method (SCRAM, md5,
// cleartext). A thin adapter so the tests keep their names for the users and CA files.
#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/cert_authority.hpp"
#include "tests/support/pg_cluster.hpp"

namespace pgshift::pool::test {

class PgCluster {
 public:
  // Throws std::runtime_error (with the command and its output) on any failure.
  PgCluster();

  std::uint16_t port() const { return cluster_->port(); }
  std::string ca_file() const { return ca_.ca_cert().string(); }  // signed the server cert
  std::string wrong_ca_file() const { return ca_.wrong_ca_cert().string(); }  // an unrelated CA
  // Runs SQL as the superuser; returns psql's unaligned output.
  std::string psql(const std::string& sql) const { return cluster_->psql(sql); }

  static constexpr const char* scram_user = "scram_user";
  static constexpr const char* scram_password = "scram-secret-1";
  static constexpr const char* md5_user = "md5_user";
  static constexpr const char* md5_password = "md5-secret-2";
  static constexpr const char* clear_user = "clear_user";
  static constexpr const char* clear_password = "clear-secret-3";

 private:
  pgshift::test::CertAuthority ca_;
  std::unique_ptr<pgshift::test::PgCluster> cluster_;
};

}  // namespace pgshift::pool::test
