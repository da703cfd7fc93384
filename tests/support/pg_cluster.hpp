#pragma once
// A real PostgreSQL 15 cluster for integration tests: initdb into a private temp dir, start
// on a free loopback port with pg_ctl -w (no sleeps), stop and delete on destruction.
//
// Runs initdb, pg_ctl and postgres as the "postgres" OS user (runuser) when the test runs as
// root, because PostgreSQL refuses to run as root. Binaries come from pg_bindir().
//
// Control channel: the fixture itself connects over the unix socket in the temp dir as the
// superuser, with a "local all all trust" line that is always first in pg_hba.conf; TCP
// connections (tests, psql, pgshift) authenticate per the HBA entries.
//
// Crash safety: a detached watchdog shell stops the postmaster (SIGQUIT) and removes the
// temp dir if the test process dies without running destructors (crash, ctest timeout).
//
// Thread-safety: conninfo(), psql(), exec(), connect() and log() may be called from several
// threads at once; start/stop/restart/reload/create_role/add_hba may not.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cert_authority.hpp"
#include "pg_connection.hpp"
#include "process.hpp"
#include "temp_dir.hpp"
#include "unique_fd.hpp"

namespace pgshift::test {

enum class AuthMethod { scram_sha_256, md5, password, trust, reject };
std::string_view to_string(AuthMethod method);  // pg_hba.conf spelling: "scram-sha-256", ...

struct HbaEntry {
  std::string type = "host";  // local, host, hostssl, hostnossl
  std::string database = "all";
  std::string user = "all";
  std::string address = "127.0.0.1/32";  // ignored for local
  AuthMethod method = AuthMethod::scram_sha_256;
  std::string line() const;
};

enum class StopMode { smart, fast, immediate };

struct PgClusterOptions {
  std::string name = "pg";  // for messages and the temp dir name
  std::string superuser = "postgres";
  std::string superuser_password = "postgres-test-password";
  // postgresql.conf settings applied after the fixture's defaults (values are quoted for
  // you): {{"wal_level", "logical"}, {"max_connections", "300"}}.
  std::vector<std::pair<std::string, std::string>> settings{};
  std::optional<ServerCert> tls{};  // ssl=on with this cert/key, e.g. CertAuthority::server()
  bool tls_only = false;            // TCP without TLS is rejected (like rds.force_ssl=1)
  std::vector<HbaEntry> hba{};      // checked before the default entries
  // Defaults: "host all all 127.0.0.1/32 scram-sha-256" and the same for replication
  // ("hostssl" + "hostnossl ... reject" when tls_only).
  bool default_hba = true;
  std::uint16_t port = 0;  // 0: a free port (retried if another process takes it first)
  bool start = true;       // start in the constructor
  std::chrono::seconds start_timeout{60};
};

class PgCluster {
 public:
  // initdb (+ start unless options.start is false). Throws std::runtime_error with the
  // server log on failure.
  explicit PgCluster(PgClusterOptions options = {});
  ~PgCluster();  // pg_ctl stop -m immediate, then the temp dir is removed
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  void start();
  void stop(StopMode mode = StopMode::fast);
  void restart(StopMode mode = StopMode::fast);  // pg_ctl restart -w; same port
  // Rewrites postgresql.conf additions and pg_hba.conf, then pg_ctl reload, and returns
  // only once new connections see the new configuration.
  void reload();
  bool running() const { return running_; }

  const std::string& name() const { return options_.name; }
  std::string host() const { return "127.0.0.1"; }
  std::uint16_t port() const { return port_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  const std::filesystem::path& socket_dir() const { return socket_dir_; }
  const std::filesystem::path& log_file() const { return log_file_; }
  std::string log() const;  // the server log so far
  const std::string& superuser() const { return options_.superuser; }
  const std::string& superuser_password() const { return options_.superuser_password; }
  // The password create_role() set for user (the superuser's too); throws if unknown.
  const std::string& password_of(const std::string& user) const;

  // A libpq conninfo for TCP to this cluster: host, port, user (default: the superuser),
  // password (default: the one create_role() set), dbname, then extra verbatim
  // (e.g. "sslmode=verify-full sslrootcert=/path/ca.crt").
  std::string conninfo(const std::string& user = {},
                       std::optional<std::string> password = std::nullopt,
                       const std::string& db = "postgres", const std::string& extra = {}) const;

  // The real psql over TCP; stdout without the trailing newline (-At: "a|b" per row).
  // Throws with psql's stderr on failure.
  std::string psql(const std::string& sql, const std::string& db = "postgres",
                   const std::string& user = {}) const;
  // Superuser over the unix socket, for quick setup and assertions.
  QueryResult exec(const std::string& sql, const std::string& db = "postgres") const;
  PgConnection connect(const std::string& user = {}, const std::string& db = "postgres") const;

  // CREATE ROLE name LOGIN PASSWORD ..., stored as MD5 for AuthMethod::md5 (so the server
  // really runs MD5 auth) and as SCRAM otherwise. Methods other than scram-sha-256 add
  // pg_hba entries for that user (all databases and replication) and reload.
  void create_role(const std::string& name, const std::string& password,
                   AuthMethod method = AuthMethod::scram_sha_256,
                   const std::string& attributes = "LOGIN");
  void create_database(const std::string& name, const std::string& owner = {});
  // Adds an entry after the existing test entries, before the defaults; reloads if running.
  void add_hba(HbaEntry entry);

 private:
  CommandResult run_as_postgres(std::vector<std::string> argv,
                                std::chrono::milliseconds timeout) const;
  void write_owned(const std::filesystem::path& path, std::string_view content) const;
  void write_config() const;
  void write_hba() const;
  void start_watchdog();
  std::string admin_conninfo(const std::string& db) const;
  std::string failure(const std::string& what, const CommandResult& result) const;

  UniqueFd watchdog_pipe_;  // closed last: the watchdog cleans up after a crash when it closes
  PgClusterOptions options_;
  TempDir root_;
  std::filesystem::path data_dir_;
  std::filesystem::path socket_dir_;
  std::filesystem::path log_file_;
  std::uint16_t port_ = 0;
  bool running_ = false;
  int reload_seq_ = 0;
  std::vector<HbaEntry> hba_;
  std::map<std::string, std::string> passwords_;
};

}  // namespace pgshift::test
