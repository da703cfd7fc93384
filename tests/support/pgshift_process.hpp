#pragma once
// Runs the pgshift binary under test: writes the config (YAML given by the test), a users
// file and an admin token file into a private temp dir, starts `pgshift --config FILE` there
// and waits until the listen port accepts TCP connections (polled, 10 s deadline by default).
// Other command lines (e.g. check-config) through PgshiftOptions::args.
// The process is killed when this object is destroyed; terminate() is the graceful path.
//
// The YAML may use these placeholders, replaced before it is written:
//   {{dir}} {{host}} {{port}} {{admin_port}} {{users_file}} {{admin_token_file}}
//   {{config_file}}
// An unknown {{...}} is an error (catches typos). See pgshift_config.hpp for a builder.
//
// Thread-safety: log(), conninfo() and port() may be called from any thread; the rest from
// the owning thread.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "process.hpp"
#include "temp_dir.hpp"

namespace pgshift::test {

struct PgshiftOptions {
  std::string config_yaml{};  // with placeholders, see above
  std::string users{};        // users file text ("user" "password" lines); see users_file_text()
  std::string admin_token = "pgshift-test-admin-token";
  std::map<std::string, std::string> files{};  // more files for the temp dir: name -> content
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;        // 0: free_port()
  std::uint16_t admin_port = 0;  // 0: free_port()
  // Command-line arguments, placeholders substituted. Empty: {"--config", "{{config_file}}"}.
  // E.g. {"check-config", "{{config_file}}"} with wait_ready = false, then
  // process().wait_for(...) and log().
  std::vector<std::string> args{};
  std::vector<std::string> extra_args{};     // appended to args
  std::map<std::string, std::string> env{};  // e.g. secrets for ${env:VAR}
  std::filesystem::path binary{};            // empty: pgshift_binary()
  bool wait_ready = true;                    // false: do not wait for the port
  std::chrono::milliseconds ready_timeout{10000};
};

class PgshiftProcess {
 public:
  // Starts pgshift. If wait_ready, throws std::runtime_error (with pgshift's output) when it
  // exits or does not listen before the deadline.
  explicit PgshiftProcess(PgshiftOptions options);
  ~PgshiftProcess();  // SIGTERM, 2 s grace, SIGKILL
  PgshiftProcess(const PgshiftProcess&) = delete;
  PgshiftProcess& operator=(const PgshiftProcess&) = delete;

  const std::string& host() const { return options_.host; }
  std::uint16_t port() const { return options_.port; }
  std::uint16_t admin_port() const { return options_.admin_port; }
  const std::string& admin_token() const { return options_.admin_token; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path config_file() const { return dir_ / "pgshift.yaml"; }
  std::filesystem::path users_file() const { return dir_ / "users.txt"; }
  std::filesystem::path admin_token_file() const { return dir_ / "admin-token"; }
  std::filesystem::path log_file() const { return dir_ / "pgshift.log"; }

  std::string log() const;  // stdout and stderr so far (JSON log lines)
  // Polls the log for needle; on timeout records a gtest failure naming it. Returns found.
  bool wait_for_log(const std::string& needle,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;

  // libpq conninfo for a client connecting through pgshift.
  std::string conninfo(const std::string& user, const std::string& password,
                       const std::string& db = "postgres", const std::string& extra = {}) const;

  bool running();
  std::optional<ExitStatus> exit_status() const { return process_->exit_status(); }
  // SIGTERM and wait for the exit (SIGKILL after timeout); returns how it exited.
  ExitStatus terminate(std::chrono::milliseconds timeout = std::chrono::seconds(40));
  void send_signal(int sig) { process_->send_signal(sig); }  // e.g. SIGHUP to reload
  // Rewrites the config file (placeholders substituted), e.g. before SIGHUP.
  void write_config(const std::string& yaml) const;
  Process& process() { return *process_; }

  // Replaces the placeholders of this process in text; throws on an unknown one.
  std::string substitute(const std::string& text) const;

 private:
  PgshiftOptions options_;
  TempDir dir_;
  std::optional<Process> process_;
};

// Users file text, PgBouncer userlist format: "name" "password" per line (quotes doubled).
std::string users_file_text(const std::vector<std::pair<std::string, std::string>>& users);

}  // namespace pgshift::test
