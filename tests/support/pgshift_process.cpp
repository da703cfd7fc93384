#include "pgshift_process.hpp"

#include <stdexcept>

#include "files.hpp"
#include "net.hpp"
#include "paths.hpp"
#include "pg_connection.hpp"
#include "psql.hpp"
#include "wait.hpp"

namespace pgshift::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr fs::perms kPrivate = fs::perms::owner_read | fs::perms::owner_write;

std::string tail(const std::string& text, std::size_t max_chars = 8000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

}  // namespace

PgshiftProcess::PgshiftProcess(PgshiftOptions options)
    : options_(std::move(options)), dir_("pgshift-proxy") {
  if (options_.port == 0) options_.port = free_port();
  if (options_.admin_port == 0) options_.admin_port = free_port();
  if (options_.binary.empty()) options_.binary = pgshift_binary();
  if (!fs::exists(options_.binary)) {
    throw std::runtime_error("pgshift binary not found: " + options_.binary.string() +
                             " (build target pgshift or set PGSHIFT_BIN)");
  }

  write_file(users_file(), options_.users, kPrivate);
  write_file(admin_token_file(), options_.admin_token + "\n", kPrivate);
  for (const auto& [name, content] : options_.files) write_file(dir_ / name, content, kPrivate);
  write_config(options_.config_yaml);

  ProcessOptions process;
  process.argv = {options_.binary.string()};
  if (options_.args.empty()) options_.args = {"--config", "{{config_file}}"};
  for (const std::string& arg : options_.args) process.argv.push_back(substitute(arg));
  process.argv.insert(process.argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  process.env = options_.env;
  process.unset_env = libpq_environment_variables();
  process.cwd = dir_.path();
  process.stdout_file = log_file();
  process.merge_output = true;
  process_.emplace(std::move(process));

  if (!options_.wait_ready) return;
  // The client port listens a moment before the admin API is up: ready means both, which
  // the "pgshift listening" line (logged last at startup) says.
  const bool ready =
      wait_for_port(options_.host, options_.port, options_.ready_timeout,
                    [this] { return process_->running(); }) &&
      wait_until(
          [this] {
            return !process_->running() || log().find("pgshift listening") != std::string::npos;
          },
          options_.ready_timeout, "pgshift logs that it listens") &&
      process_->running();
  if (!ready) {
    std::string why =
        process_->running()
            ? "not listening on " + options_.host + ":" + std::to_string(options_.port) +
                  " after " + std::to_string(options_.ready_timeout.count()) + " ms"
            : "exited (" + process_->exit_status()->to_string() + ") before listening";
    process_->terminate(2s);
    throw std::runtime_error("pgshift " + why + "\n--- config ---\n" +
                             substitute(options_.config_yaml) + "\n--- output ---\n" + tail(log()));
  }
}

PgshiftProcess::~PgshiftProcess() = default;  // Process kills the child

std::string PgshiftProcess::substitute(const std::string& text) const {
  const std::map<std::string, std::string, std::less<>> values = {
      {"dir", dir_.path().string()},           {"host", options_.host},
      {"port", std::to_string(options_.port)}, {"admin_port", std::to_string(options_.admin_port)},
      {"users_file", users_file().string()},   {"admin_token_file", admin_token_file().string()},
      {"config_file", config_file().string()},
  };
  std::string out;
  std::size_t pos = 0;
  while (true) {
    const std::size_t open = text.find("{{", pos);
    if (open == std::string::npos) break;
    const std::size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) break;
    const std::string_view key = std::string_view(text).substr(open + 2, close - open - 2);
    const auto it = values.find(key);
    if (it == values.end()) {
      throw std::invalid_argument("unknown placeholder {{" + std::string(key) +
                                  "}} in pgshift config");
    }
    out.append(text, pos, open - pos);
    out += it->second;
    pos = close + 2;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

void PgshiftProcess::write_config(const std::string& yaml) const {
  write_file(config_file(), substitute(yaml), kPrivate);
}

std::string PgshiftProcess::log() const {
  try {
    return read_file(log_file());
  } catch (const std::exception&) {
    return {};
  }
}

bool PgshiftProcess::wait_for_log(const std::string& needle,
                                  std::chrono::milliseconds timeout) const {
  return wait_until([&] { return log().find(needle) != std::string::npos; }, timeout,
                    "pgshift log line containing \"" + needle + "\"");
}

std::string PgshiftProcess::conninfo(const std::string& user, const std::string& password,
                                     const std::string& db, const std::string& extra) const {
  std::string result = "host=" + options_.host + " port=" + std::to_string(options_.port) +
                       " user=" + conninfo_quote(user) + " dbname=" + conninfo_quote(db);
  if (!password.empty()) result += " password=" + conninfo_quote(password);
  if (!extra.empty()) result += " " + extra;
  return result;
}

bool PgshiftProcess::running() {
  return process_->running();
}

ExitStatus PgshiftProcess::terminate(std::chrono::milliseconds timeout) {
  return process_->terminate(timeout);
}

std::string users_file_text(const std::vector<std::pair<std::string, std::string>>& users) {
  auto quote = [](const std::string& value) {
    std::string out = "\"";
    for (char c : value) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  };
  std::string text;
  for (const auto& [name, password] : users) text += quote(name) + " " + quote(password) + "\n";
  return text;
}

}  // namespace pgshift::test
