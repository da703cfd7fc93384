#include "config/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pgshift::config {
namespace {

// Owns a file descriptor for the duration of one helper call.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string quoted(const std::string& path) {
  return "'" + path + "'";
}

// Opens `path` read-only and checks it is a regular file; returns the open descriptor or
// sets `error`.
int open_regular(const std::string& path, std::string& error, off_t& size) {
  if (path.empty()) {
    error = "empty file name";
    return -1;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = "cannot read " + quoted(path) + ": " + std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    error = "cannot read " + quoted(path) + ": not a regular file";
    return -1;
  }
  size = st.st_size;
  return fd;
}

}  // namespace

std::optional<std::string> read_text_file(const std::string& path, std::size_t max_bytes,
                                          std::string& error) {
  off_t size = 0;
  Fd fd(open_regular(path, error, size));
  if (fd.get() < 0) return std::nullopt;
  if (static_cast<std::size_t>(size) > max_bytes) {
    error = "cannot read " + quoted(path) + ": larger than " + std::to_string(max_bytes) + " bytes";
    return std::nullopt;
  }
  std::string text;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      error = "cannot read " + quoted(path) + ": " + std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) {
      error =
          "cannot read " + quoted(path) + ": larger than " + std::to_string(max_bytes) + " bytes";
      return std::nullopt;
    }
  }
  return text;
}

std::optional<std::string> unreadable_reason(const std::string& path) {
  std::string error;
  off_t size = 0;
  Fd fd(open_regular(path, error, size));
  if (fd.get() < 0) return error;
  return std::nullopt;
}

}  // namespace pgshift::config
