#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace pgshift::test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void throw_errno(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::string env_value(const std::map<std::string, std::string>& overrides, const char* name) {
  if (auto it = overrides.find(name); it != overrides.end()) return it->second;
  const char* value = std::getenv(name);
  return value ? value : "";
}

// Resolves argv[0] the way execvp would, but in the parent (execvp is not async-signal-safe).
std::string resolve_program(const std::string& program, const std::string& path_env) {
  if (program.find('/') != std::string::npos) return program;
  std::string_view rest = path_env.empty() ? std::string_view("/usr/local/bin:/usr/bin:/bin")
                                          : std::string_view(path_env);
  while (true) {
    const auto colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (dir.empty()) dir = ".";
    const std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0 && !fs::is_directory(candidate)) return candidate;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  throw std::system_error(ENOENT, std::generic_category(), "command not found: " + program);
}

std::vector<std::string> build_environment(const ProcessOptions& options) {
  std::vector<std::string> result;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view kv(*entry);
    const std::string name(kv.substr(0, kv.find('=')));
    if (options.env.count(name) != 0) continue;
    if (std::find(options.unset_env.begin(), options.unset_env.end(), name) !=
        options.unset_env.end()) {
      continue;
    }
    result.emplace_back(kv);
  }
  for (const auto& [name, value] : options.env) result.push_back(name + "=" + value);
  return result;
}

UniqueFd open_output(const fs::path& file) {
  if (!file.empty()) {
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644));
    if (!fd) throw_errno("open " + file.string());
    return fd;
  }
  // Anonymous: unlinked right away, read back through the descriptor.
  std::string templ = (fs::temp_directory_path() / "pgshift-output-XXXXXX").string();
  UniqueFd fd(::mkostemp(templ.data(), O_APPEND | O_CLOEXEC));
  if (!fd) throw_errno("mkostemp " + templ);
  ::unlink(templ.c_str());
  return fd;
}

std::vector<char*> c_strings(std::vector<std::string>& strings) {
  std::vector<char*> result;
  result.reserve(strings.size() + 1);
  for (auto& s : strings) result.push_back(s.data());
  result.push_back(nullptr);
  return result;
}

ExitStatus decode_status(int raw) {
  ExitStatus status;
  if (WIFEXITED(raw)) {
    status.exit_code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    status.signal = WTERMSIG(raw);
  }
  return status;
}

}  // namespace

std::string ExitStatus::to_string() const {
  if (signal != 0) return "signal " + std::to_string(signal) + " (" + ::strsignal(signal) + ")";
  return "exit " + std::to_string(exit_code);
}

std::string read_fd_contents(int fd) {
  std::string result;
  if (fd < 0) return result;
  char buffer[65536];
  off_t offset = 0;
  while (true) {
    const ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.append(buffer, static_cast<std::size_t>(n));
    offset += n;
  }
  return result;
}

Process::Process(ProcessOptions options) {
  spawn(std::move(options));
}

Process::Process(std::vector<std::string> argv) {
  ProcessOptions options;
  options.argv = std::move(argv);
  spawn(std::move(options));
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      stdout_fd_(std::move(other.stdout_fd_)),
      stderr_fd_(std::move(other.stderr_fd_)),
      stdin_fd_(std::move(other.stdin_fd_)),
      status_(other.status_),
      argv_(std::move(other.argv_)) {}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) terminate(std::chrono::seconds(2));
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    stdout_fd_ = std::move(other.stdout_fd_);
    stderr_fd_ = std::move(other.stderr_fd_);
    stdin_fd_ = std::move(other.stdin_fd_);
    status_ = other.status_;
    argv_ = std::move(other.argv_);
  }
  return *this;
}

Process::~Process() {
  if (pid_ > 0 && !status_) {
    try {
      terminate(std::chrono::seconds(2));
    } catch (...) {
      // Destructors must not throw; the child got SIGKILL at worst.
    }
  }
}

void Process::spawn(ProcessOptions options) {
  if (options.argv.empty()) throw std::invalid_argument("Process: empty argv");
  argv_ = options.argv;

  // Everything the child needs is prepared here: between fork and exec only
  // async-signal-safe calls are allowed (the parent has other threads).
  std::vector<std::string> env_strings = build_environment(options);
  const std::string program = resolve_program(options.argv[0], env_value(options.env, "PATH"));
  std::vector<std::string> argv_strings = options.argv;
  std::vector<char*> argv_c = c_strings(argv_strings);
  std::vector<char*> env_c = c_strings(env_strings);
  const std::string cwd = options.cwd.string();

  UniqueFd child_stdin;
  if (options.stdin_fd >= 0) {
    child_stdin.reset(::fcntl(options.stdin_fd, F_DUPFD_CLOEXEC, 3));
    if (!child_stdin) throw_errno("dup stdin_fd");
  } else if (options.stdin_pipe) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    child_stdin.reset(fds[0]);
    stdin_fd_.reset(fds[1]);
  } else {
    const fs::path in = options.stdin_file.empty() ? fs::path("/dev/null") : options.stdin_file;
    child_stdin.reset(::open(in.c_str(), O_RDONLY | O_CLOEXEC));
    if (!child_stdin) throw_errno("open " + in.string());
  }
  stdout_fd_ = open_output(options.stdout_file);
  if (!options.merge_output) stderr_fd_ = open_output(options.stderr_file);
  const int child_out = stdout_fd_.get();
  const int child_err = options.merge_output ? stdout_fd_.get() : stderr_fd_.get();

  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
  UniqueFd error_read(error_pipe[0]);
  UniqueFd error_write(error_pipe[1]);

  const pid_t parent = ::getpid();
  const bool kill_with_parent = options.kill_with_parent;
  const pid_t pid = ::fork();
  if (pid < 0) throw_errno("fork");
  if (pid == 0) {
    // Child. Async-signal-safe calls only.
    if (kill_with_parent) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    ::setpgid(0, 0);
    sigset_t none;
    ::sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    ::sigaction(SIGPIPE, &dfl, nullptr);
    if (::dup2(child_stdin.get(), 0) < 0 || ::dup2(child_out, 1) < 0 || ::dup2(child_err, 2) < 0) {
      const int e = errno;
      (void)!::write(error_write.get(), &e, sizeof e);
      ::_exit(127);
    }
    // Nothing else leaks into the child, whatever other threads opened without O_CLOEXEC.
    ::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      const int e = errno;
      (void)!::write(error_write.get(), &e, sizeof e);
      ::_exit(127);
    }
    ::execve(program.c_str(), argv_c.data(), env_c.data());
    const int e = errno;
    (void)!::write(error_write.get(), &e, sizeof e);
    ::_exit(127);
  }

  pid_ = pid;
  ::setpgid(pid, pid);  // also in the parent, so signalling the group never races the child
  error_write.reset();
  child_stdin.reset();
  int child_errno = 0;
  ssize_t n;
  do {
    n = ::read(error_read.get(), &child_errno, sizeof child_errno);
  } while (n < 0 && errno == EINTR);
  if (n > 0) {
    int raw = 0;
    ::waitpid(pid, &raw, 0);
    pid_ = -1;
    throw std::system_error(child_errno, std::generic_category(), "cannot start " + command_line());
  }
  // glibc 2.36's <sys/pidfd.h> lacks extern "C", hence the raw syscall. -1 on old kernels:
  // wait_for() then polls waitpid instead.
  pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
}

bool Process::try_reap(bool block) {
  if (status_) return true;
  if (pid_ <= 0) return false;
  int raw = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &raw, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == pid_) {
    status_ = decode_status(raw);
    pidfd_.reset();
    return true;
  }
  if (r < 0) throw_errno("waitpid " + command_line());
  return false;
}

bool Process::running() {
  return pid_ > 0 && !try_reap(false);
}

std::optional<ExitStatus> Process::wait_for(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  auto backoff = milliseconds(1);
  while (!try_reap(false)) {
    const auto now = Clock::now();
    if (now >= deadline) return std::nullopt;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1);
    if (pidfd_) {
      pollfd p{pidfd_.get(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<milliseconds::rep>(left.count(), 1000)));
    } else {
      std::this_thread::sleep_for(std::min(backoff, left));
      backoff = std::min(backoff * 2, milliseconds(50));
    }
  }
  return status_;
}

ExitStatus Process::wait() {
  if (pid_ <= 0 && !status_) throw std::logic_error("Process::wait on an empty Process");
  try_reap(true);
  return *status_;
}

void Process::send_signal(int sig) {
  if (pid_ <= 0 || status_) return;
  if (::kill(-pid_, sig) != 0) ::kill(pid_, sig);
}

ExitStatus Process::terminate(milliseconds grace) {
  if (pid_ <= 0 && !status_) throw std::logic_error("Process::terminate on an empty Process");
  if (status_) return *status_;
  send_signal(SIGTERM);
  if (auto status = wait_for(grace)) return *status;
  send_signal(SIGKILL);
  return wait();
}

void Process::write_stdin(std::string_view data) {
  if (!stdin_fd_) throw std::logic_error("Process: stdin is not a pipe (or already closed)");
  while (!data.empty()) {
    const ssize_t n = ::write(stdin_fd_.get(), data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("write to stdin of " + command_line());
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void Process::close_stdin() {
  stdin_fd_.reset();
}

std::string Process::stdout_text() const {
  return read_fd_contents(stdout_fd_.get());
}

std::string Process::stderr_text() const {
  return stderr_fd_ ? read_fd_contents(stderr_fd_.get()) : stdout_text();
}

std::string Process::command_line() const {
  std::string result;
  for (const auto& arg : argv_) {
    if (!result.empty()) result += ' ';
    result += arg;
  }
  return result;
}

std::string CommandResult::describe() const {
  std::string result = timed_out ? "timed out (exit " : "exit ";
  result += std::to_string(exit_code);
  if (timed_out) result += ")";
  result += "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
  return result;
}

CommandResult run_command(const std::vector<std::string>& argv, milliseconds timeout) {
  ProcessOptions options;
  options.argv = argv;
  return run_command(std::move(options), timeout);
}

CommandResult run_command(ProcessOptions options, milliseconds timeout) {
  Process process(std::move(options));
  CommandResult result;
  std::optional<ExitStatus> status = process.wait_for(timeout);
  if (!status) {
    result.timed_out = true;
    status = process.terminate(std::chrono::seconds(2));
  }
  result.exit_code = status->shell_code();
  result.out = process.stdout_text();
  result.err = process.stderr_text();
  return result;
}

}  // namespace pgshift::test
