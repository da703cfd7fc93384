#pragma once
// Child processes for integration tests: spawn with argv / env / cwd, output captured to
// files (no pipes to drain, no deadlock), wait with a deadline, terminate with SIGTERM then
// SIGKILL. The child runs in its own process group and signals go to the whole group.
//
// Crash safety: by default the child gets SIGKILL when the thread that started it exits
// (PR_SET_PDEATHSIG), so a crashed or timed-out test binary leaves no orphans. Start
// long-lived processes from the main thread (test bodies and gtest Environments run there).
//
// Thread-safety: one owner per Process; different Process objects are independent.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unique_fd.hpp"

namespace pgshift::test {

struct ProcessOptions {
  std::vector<std::string> argv{};           // argv[0] without '/' is looked up in PATH
  std::map<std::string, std::string> env{};  // added to, or overriding, the inherited environment
  std::vector<std::string> unset_env{};      // removed from the inherited environment
  std::filesystem::path cwd{};               // empty: inherit
  // Where output goes. Empty: an anonymous temporary file, readable through stdout_text().
  std::filesystem::path stdout_file{};
  std::filesystem::path stderr_file{};
  bool merge_output = false;           // stderr goes to the stdout file too
  std::filesystem::path stdin_file{};  // empty: /dev/null (unless stdin_pipe or stdin_fd)
  int stdin_fd = -1;             // a descriptor to use as the child's stdin; the caller keeps it
  bool stdin_pipe = false;       // feed stdin with write_stdin() / close_stdin()
  bool kill_with_parent = true;  // PR_SET_PDEATHSIG(SIGKILL)
};

struct ExitStatus {
  int exit_code = -1;  // meaningful when signal == 0
  int signal = 0;      // the signal that ended the process, 0 if it exited
  bool success() const { return signal == 0 && exit_code == 0; }
  int shell_code() const { return signal != 0 ? 128 + signal : exit_code; }  // like $? in sh
  std::string to_string() const;  // "exit 0", "signal 9 (Killed)"
};

class Process {
 public:
  // Spawns the child. Throws std::system_error if it cannot be started (e.g. no such program).
  explicit Process(ProcessOptions options);
  explicit Process(std::vector<std::string> argv);
  ~Process();  // terminate(2 s) if still running
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();  // reaps the child if it has exited
  std::optional<ExitStatus> exit_status() const { return status_; }
  std::optional<ExitStatus> wait_for(std::chrono::milliseconds timeout);  // nullopt: still running
  ExitStatus wait();
  // SIGTERM to the group, wait up to grace, then SIGKILL and wait.
  ExitStatus terminate(std::chrono::milliseconds grace = std::chrono::seconds(10));
  void send_signal(int sig);  // to the whole process group; no-op once reaped

  void write_stdin(std::string_view data);  // needs stdin_pipe; throws if the child closed it
  void close_stdin();

  std::string stdout_text() const;
  std::string stderr_text() const;   // same as stdout_text() with merge_output
  std::string command_line() const;  // argv joined, for messages

 private:
  void spawn(ProcessOptions options);
  bool try_reap(bool block);

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd stdout_fd_;
  UniqueFd stderr_fd_;
  UniqueFd stdin_fd_;
  std::optional<ExitStatus> status_;
  std::vector<std::string> argv_;
};

struct CommandResult {
  int exit_code = -1;  // shell convention: 128 + signal if killed
  std::string out{};   // stdout
  std::string err{};   // stderr
  bool timed_out = false;
  bool success() const { return exit_code == 0 && !timed_out; }
  std::string describe() const;  // exit code, stdout and stderr, for failure messages
};

// Runs a command to completion. On timeout the process group is terminated and
// timed_out is set. Throws only if the command cannot be started.
CommandResult run_command(const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));
CommandResult run_command(ProcessOptions options,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Reads a whole file descriptor from offset 0 (pread), without moving its offset.
std::string read_fd_contents(int fd);

}  // namespace pgshift::test
