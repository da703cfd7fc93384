#include "pg_cluster.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

#include "files.hpp"
#include "net.hpp"
#include "paths.hpp"
#include "process.hpp"
#include "psql.hpp"
#include "wait.hpp"

namespace pgshift::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr const char* kPostgresUser = "postgres";

// Runs detached from the test process (so ctest's kill of the test's process tree misses
// it) and waits for EOF on fd 3, which the test process holds open until its PgCluster is
// destroyed, or until it dies. Then: immediate shutdown of a postmaster still running in
// $1, and removal of the cluster's temp dir $2 (unless $3 = keep).
constexpr const char* kWatchdogScript = R"sh(
exec 3<&0
(
  trap '' HUP INT TERM
  read -r _ <&3
  pidfile="$1/postmaster.pid"
  if [ -f "$pidfile" ]; then
    pid=$(head -n 1 "$pidfile")
    if [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null; then
      i=0
      while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    fi
  fi
  [ "$3" = keep ] || rm -rf "$2"
) </dev/null >/dev/null 2>&1 &
)sh";

std::string conf_quote(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string_view stop_mode_name(StopMode mode) {
  switch (mode) {
    case StopMode::smart:
      return "smart";
    case StopMode::fast:
      return "fast";
    case StopMode::immediate:
      return "immediate";
  }
  return "fast";
}

// The postgres user must be able to reach its data dir: every ancestor of base must be
// searchable by others (TMPDIR under /root would not be).
fs::path base_for_postgres() {
  fs::path base = fs::temp_directory_path();
  if (!running_as_root()) return base;
  for (fs::path p = base; !p.empty(); p = p.parent_path()) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || (st.st_mode & S_IXOTH) == 0) return "/tmp";
    if (p == p.parent_path()) break;
  }
  return base;
}

bool keep_temp() {
  const char* keep = std::getenv("PGSHIFT_KEEP_TEMP");
  return keep != nullptr && std::string_view(keep) == "1";
}

std::string tail(const std::string& text, std::size_t max_chars = 4000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

}  // namespace

std::string_view to_string(AuthMethod method) {
  switch (method) {
    case AuthMethod::scram_sha_256:
      return "scram-sha-256";
    case AuthMethod::md5:
      return "md5";
    case AuthMethod::password:
      return "password";
    case AuthMethod::trust:
      return "trust";
    case AuthMethod::reject:
      return "reject";
  }
  return "reject";
}

std::string HbaEntry::line() const {
  std::string result = type + " " + database + " " + user + " ";
  if (type != "local") result += address + " ";
  return result + std::string(to_string(method));
}

PgCluster::PgCluster(PgClusterOptions options)
    : options_(std::move(options)),
      root_("pgshift-" + options_.name, base_for_postgres()),
      data_dir_(root_ / "data"),
      socket_dir_(root_ / "sock"),
      log_file_(root_ / "server.log"),
      port_(options_.port != 0 ? options_.port : free_port()),
      hba_(options_.hba) {
  passwords_[options_.superuser] = options_.superuser_password;
  fs::create_directory(socket_dir_);
  const fs::path pwfile = root_ / "pwfile";
  write_file(pwfile, options_.superuser_password + "\n", fs::perms::owner_read);
  root_.chown_to(kPostgresUser);
  start_watchdog();

  const CommandResult init = run_as_postgres(
      {pg_tool("initdb").string(), "-D", data_dir_.string(), "-U", options_.superuser,
       "--pwfile=" + pwfile.string(), "--auth-local=trust", "--auth-host=scram-sha-256",
       "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"},
      120s);
  fs::remove(pwfile);
  if (!init.success()) throw std::runtime_error(failure("initdb", init));

  if (options_.tls) {
    write_owned(data_dir_ / "server.crt", read_file(options_.tls->cert));
    write_owned(data_dir_ / "server.key", read_file(options_.tls->key));
  }
  const fs::path main_conf = data_dir_ / "postgresql.conf";
  write_owned(main_conf, read_file(main_conf) + "\ninclude 'pgshift_test.conf'\n");
  write_config();
  write_hba();
  if (options_.start) start();
}

PgCluster::~PgCluster() {
  if (running_) {
    try {
      run_as_postgres({pg_tool("pg_ctl").string(), "stop", "-D", data_dir_.string(), "-m",
                       "immediate", "-w", "-t", "30", "-s"},
                      60s);
    } catch (...) {
      // The watchdog stops it when the pipe closes.
    }
  }
  // The TempDir member removes the directory; closing the pipe then lets the watchdog go
  // (it finds no postmaster and nothing to delete).
}

CommandResult PgCluster::run_as_postgres(std::vector<std::string> argv,
                                         std::chrono::milliseconds timeout) const {
  ProcessOptions options;
  if (running_as_root()) {
    options.argv = {"runuser", "-u", kPostgresUser, "--"};
  }
  options.argv.insert(options.argv.end(), argv.begin(), argv.end());
  options.cwd = root_.path();
  options.unset_env = libpq_environment_variables();
  options.unset_env.push_back("PGDATA");
  options.env["LC_ALL"] = "C";
  return run_command(std::move(options), timeout);
}

void PgCluster::write_owned(const fs::path& path, std::string_view content) const {
  write_file(path, content, fs::perms::owner_read | fs::perms::owner_write);
  chown_to_user(path, kPostgresUser);
}

void PgCluster::write_config() const {
  std::string conf = "# written by pgshift test support (tests/support/pg_cluster.cpp)\n";
  auto set = [&conf](std::string_view key, std::string_view value) {
    conf += std::string(key) + " = " + conf_quote(value) + "\n";
  };
  set("listen_addresses", "127.0.0.1");
  set("port", std::to_string(port_));
  set("unix_socket_directories", socket_dir_.string());
  // Durability is not under test: skip fsyncs so COPY-heavy tests stay fast.
  set("fsync", "off");
  set("full_page_writes", "off");
  set("synchronous_commit", "off");
  set("log_line_prefix", "%m [%p] %q%u@%d ");
  if (options_.tls) {
    set("ssl", "on");
    set("ssl_cert_file", "server.crt");
    set("ssl_key_file", "server.key");
  }
  // reload() waits until new backends see this value.
  set("pgshift_test.reload_seq", std::to_string(reload_seq_));
  for (const auto& [key, value] : options_.settings) set(key, value);
  write_owned(data_dir_ / "pgshift_test.conf", conf);
}

void PgCluster::write_hba() const {
  std::string hba = "# written by pgshift test support (tests/support/pg_cluster.cpp)\n";
  hba += "local all all trust\nlocal replication all trust\n";
  for (const auto& entry : hba_) hba += entry.line() + "\n";
  if (options_.default_hba) {
    const std::string type = options_.tls_only ? "hostssl" : "host";
    hba += HbaEntry{type, "all", "all"}.line() + "\n";
    hba += HbaEntry{type, "replication", "all"}.line() + "\n";
    if (options_.tls_only) {
      hba += HbaEntry{"hostnossl", "all", "all", "0.0.0.0/0", AuthMethod::reject}.line() + "\n";
      hba += HbaEntry{"hostnossl", "replication", "all", "0.0.0.0/0", AuthMethod::reject}.line() +
             "\n";
    }
  }
  write_owned(data_dir_ / "pg_hba.conf", hba);
}

void PgCluster::start_watchdog() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    throw std::system_error(errno, std::generic_category(), "pipe2");
  }
  UniqueFd read_end(fds[0]);
  watchdog_pipe_.reset(fds[1]);
  ProcessOptions options;
  options.argv = {"sh",
                  "-c",
                  kWatchdogScript,
                  "pgshift-watchdog",
                  data_dir_.string(),
                  root_.path().string(),
                  keep_temp() ? "keep" : "remove"};
  options.stdin_fd = read_end.get();
  options.kill_with_parent = false;
  const CommandResult result = run_command(std::move(options), 30s);
  if (!result.success()) throw std::runtime_error("cluster watchdog: " + result.describe());
}

void PgCluster::start() {
  if (running_) return;
  for (int attempt = 1;; ++attempt) {
    write_config();
    const auto log_size = fs::exists(log_file_) ? fs::file_size(log_file_) : 0;
    const CommandResult result = run_as_postgres(
        {pg_tool("pg_ctl").string(), "start", "-D", data_dir_.string(), "-l", log_file_.string(),
         "-w", "-t", std::to_string(options_.start_timeout.count()), "-s"},
        options_.start_timeout + 30s);
    if (result.success()) {
      running_ = true;
      return;
    }
    const std::string new_log = log().substr(std::min<std::size_t>(log_size, log().size()));
    const bool port_taken = new_log.find("could not bind") != std::string::npos ||
                            new_log.find("already in use") != std::string::npos;
    if (!port_taken || options_.port != 0 || attempt >= 5) {
      throw std::runtime_error(failure("pg_ctl start", result));
    }
    port_ = free_port();  // someone else took ours between free_port() and bind
  }
}

void PgCluster::stop(StopMode mode) {
  if (!running_) return;
  const CommandResult result =
      run_as_postgres({pg_tool("pg_ctl").string(), "stop", "-D", data_dir_.string(), "-m",
                       std::string(stop_mode_name(mode)), "-w", "-t", "60", "-s"},
                      90s);
  if (!result.success()) throw std::runtime_error(failure("pg_ctl stop", result));
  running_ = false;
}

void PgCluster::restart(StopMode mode) {
  if (!running_) {
    start();
    return;
  }
  const CommandResult result =
      run_as_postgres({pg_tool("pg_ctl").string(), "restart", "-D", data_dir_.string(), "-l",
                       log_file_.string(), "-m", std::string(stop_mode_name(mode)), "-w", "-t",
                       std::to_string(options_.start_timeout.count()), "-s"},
                      options_.start_timeout + 90s);
  if (!result.success()) {
    running_ = false;
    throw std::runtime_error(failure("pg_ctl restart", result));
  }
}

void PgCluster::reload() {
  ++reload_seq_;
  write_config();
  write_hba();
  if (!running_) return;
  const CommandResult result =
      run_as_postgres({pg_tool("pg_ctl").string(), "reload", "-D", data_dir_.string(), "-s"}, 30s);
  if (!result.success()) throw std::runtime_error(failure("pg_ctl reload", result));
  // The postmaster reloads postgresql.conf and pg_hba.conf in the same SIGHUP pass, so once
  // a new backend sees the new sequence number the new HBA rules apply too.
  const std::string expected = std::to_string(reload_seq_);
  const bool reloaded = poll_until(
      [&] {
        try {
          return exec("SELECT current_setting('pgshift_test.reload_seq', true)").scalar() ==
                 expected;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s);
  if (!reloaded) throw std::runtime_error(options_.name + ": reload not applied within 30 s");
}

std::string PgCluster::log() const {
  try {
    return read_file(log_file_);
  } catch (const std::exception&) {
    return {};
  }
}

const std::string& PgCluster::password_of(const std::string& user) const {
  const auto it = passwords_.find(user);
  if (it == passwords_.end()) {
    throw std::invalid_argument(options_.name + ": no known password for role " + user);
  }
  return it->second;
}

std::string PgCluster::conninfo(const std::string& user, std::optional<std::string> password,
                                const std::string& db, const std::string& extra) const {
  const std::string& role = user.empty() ? options_.superuser : user;
  if (!password) {
    if (const auto it = passwords_.find(role); it != passwords_.end()) password = it->second;
  }
  std::string result = "host=" + host() + " port=" + std::to_string(port_) +
                       " user=" + conninfo_quote(role) + " dbname=" + conninfo_quote(db);
  if (password && !password->empty()) result += " password=" + conninfo_quote(*password);
  if (!extra.empty()) result += " " + extra;
  return result;
}

std::string PgCluster::admin_conninfo(const std::string& db) const {
  return "host=" + conninfo_quote(socket_dir_.string()) + " port=" + std::to_string(port_) +
         " user=" + conninfo_quote(options_.superuser) + " dbname=" + conninfo_quote(db);
}

std::string PgCluster::psql(const std::string& sql, const std::string& db,
                            const std::string& user) const {
  return run_psql(conninfo(user, std::nullopt, db), sql);
}

QueryResult PgCluster::exec(const std::string& sql, const std::string& db) const {
  PgConnection conn(admin_conninfo(db));
  return conn.exec(sql);
}

PgConnection PgCluster::connect(const std::string& user, const std::string& db) const {
  return PgConnection(conninfo(user, std::nullopt, db));
}

void PgCluster::create_role(const std::string& name, const std::string& password, AuthMethod method,
                            const std::string& attributes) {
  PgConnection conn(admin_conninfo("postgres"));
  const std::string encryption = method == AuthMethod::md5 ? "md5" : "scram-sha-256";
  std::string sql = "SET password_encryption = '" + encryption + "'; CREATE ROLE " +
                    conn.quote_identifier(name) + " " + attributes;
  if (!password.empty()) sql += " PASSWORD " + conn.quote_literal(password);
  conn.exec(sql);
  passwords_[name] = password;
  if (method != AuthMethod::scram_sha_256) {
    const std::string type = options_.tls_only ? "hostssl" : "host";
    hba_.push_back(HbaEntry{type, "all", name, "127.0.0.1/32", method});
    hba_.push_back(HbaEntry{type, "replication", name, "127.0.0.1/32", method});
    reload();
  }
}

void PgCluster::create_database(const std::string& name, const std::string& owner) {
  PgConnection conn(admin_conninfo("postgres"));
  std::string sql = "CREATE DATABASE " + conn.quote_identifier(name);
  if (!owner.empty()) sql += " OWNER " + conn.quote_identifier(owner);
  conn.exec(sql);
}

void PgCluster::add_hba(HbaEntry entry) {
  hba_.push_back(std::move(entry));
  reload();
}

std::string PgCluster::failure(const std::string& what, const CommandResult& result) const {
  return options_.name + ": " + what + " failed: " + result.describe() + "\n--- server log ---\n" +
         tail(log());
}

}  // namespace pgshift::test
