#include "pg_cluster.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "test_util.hpp"

namespace pgshift::pool::test {
namespace {

// Runs a shell command; returns stdout+stderr, throws if it exits non-zero.
std::string run(const std::string& command) {
  std::string output;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed: " + command);
  std::array<char, 4096> chunk{};
  while (std::size_t n = std::fread(chunk.data(), 1, chunk.size(), pipe)) {
    output.append(chunk.data(), n);
  }
  const int status = ::pclose(pipe);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error("command failed: " + command + "\n" + output);
  }
  return output;
}

void write_file(const std::string& path, const std::string& text, bool append = false) {
  std::ofstream out(path, append ? std::ios::app : std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string quote(const std::string& s) {
  return "'" + s + "'";
}  // paths we made: no quotes

}  // namespace

PgCluster::PgCluster() {
  std::string pattern = "/tmp/pgshift-pool-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = pattern;
  data_ = dir_ + "/data";
  ca_file_ = dir_ + "/ca.crt";
  wrong_ca_ = dir_ + "/wrong-ca.crt";
  try {
    // A CA, a server certificate it signs (SAN localhost + 127.0.0.1), an unrelated CA.
    const std::string ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run("cd " + dir_ + " && openssl req -x509 " + ec_key +
        " -keyout ca.key -out ca.crt -days 2 -subj '/CN=pgshift test CA'");
    run("cd " + dir_ + " && openssl req -x509 " + ec_key +
        " -keyout wrong-ca.key -out wrong-ca.crt -days 2 -subj '/CN=pgshift other CA'");
    run("cd " + dir_ + " && openssl req " + ec_key +
        " -keyout server.key -out server.csr -subj '/CN=localhost'");
    write_file(dir_ + "/san.ext", "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
    run("cd " + dir_ +
        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
        " -out server.crt -days 2 -extfile san.ext");
    write_file(dir_ + "/pw", "superuser-secret\n");
    if (::geteuid() == 0) run("chown -R postgres:postgres " + dir_);
    run("chmod 700 " + dir_ + " && chmod 600 " + dir_ + "/server.key");

    run(as_server_user(bin_ + "/initdb -D " + data_ + " -U postgres --auth=scram-sha-256" +
                       " --pwfile=" + dir_ + "/pw -E UTF8 --locale=C --no-sync"));
    port_ = free_port();
    write_file(data_ + "/postgresql.conf",
               "listen_addresses = '127.0.0.1'\n"
               "port = " +
                   std::to_string(port_) +
                   "\n"
                   "unix_socket_directories = " +
                   quote(dir_) +
                   "\n"
                   "ssl = on\n"
                   "ssl_cert_file = " +
                   quote(dir_ + "/server.crt") +
                   "\n"
                   "ssl_key_file = " +
                   quote(dir_ + "/server.key") +
                   "\n"
                   "fsync = off\nmax_connections = 40\nshared_buffers = 16MB\n",
               /*append=*/true);
    write_file(data_ + "/pg_hba.conf", std::string("local all postgres trust\n") + "host all " +
                                           md5_user + " 127.0.0.1/32 md5\n" + "host all " +
                                           clear_user + " 127.0.0.1/32 password\n" +
                                           "hostssl all all 127.0.0.1/32 scram-sha-256\n" +
                                           "host all all 127.0.0.1/32 scram-sha-256\n");
    run(as_server_user(bin_ + "/pg_ctl -D " + data_ + " -l " + dir_ +
                       "/server.log -w -t 60 start"));
    started_ = true;
    psql(std::string("CREATE ROLE ") + scram_user + " LOGIN PASSWORD '" + scram_password + "'");
    psql(std::string("SET password_encryption = 'md5'; CREATE ROLE ") + md5_user +
         " LOGIN PASSWORD '" + md5_password + "'");
    psql(std::string("CREATE ROLE ") + clear_user + " LOGIN PASSWORD '" + clear_password + "'");
  } catch (...) {
    std::string log;
    try {
      log = run("cat " + dir_ + "/server.log");
    } catch (...) {
    }
    stop();
    std::fprintf(stderr, "PgCluster setup failed; server log:\n%s\n", log.c_str());
    throw;
  }
}

PgCluster::~PgCluster() {
  stop();
}

void PgCluster::stop() noexcept {
  try {
    if (started_) run(as_server_user(bin_ + "/pg_ctl -D " + data_ + " -m immediate -w stop"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stopping the test cluster failed: %s\n", e.what());
  }
  started_ = false;
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string PgCluster::as_server_user(const std::string& command) const {
  if (::geteuid() != 0) return command;
  return "runuser -u postgres -- sh -c \"" + command + "\"";
}

std::string PgCluster::psql(const std::string& sql) const {
  // One file = one session, so "SET ...; CREATE ..." shares the SET.
  const std::string file = dir_ + "/query.sql";
  write_file(file, sql + ";\n");
  if (::geteuid() == 0) run("chown postgres:postgres " + file);
  return run(as_server_user(bin_ + "/psql -X -q -At -v ON_ERROR_STOP=1 -h " + dir_ + " -p " +
                            std::to_string(port_) + " -U postgres -d postgres -f " + file));
}

}  // namespace pgshift::pool::test
