// The atomic file write behind RouteStateStore (declared in route_state_store.hpp).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "proxy/control/route_state_store.hpp"

namespace pgshift::proxy {
namespace {

std::string errno_text(std::string_view step, const std::string& path) {
  return std::string(step) + " " + path + ": " + std::strerror(errno);
}

// Closes on scope exit; the write path closes explicitly to see close() errors.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string write_file_atomically(const std::string& path, std::string_view contents) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Unique per process and call, in the same directory so rename() stays atomic (same file
  // system); a crash can leave a stale temp file behind, never a torn state file.
  static std::atomic<unsigned> counter{0};
  const std::string tmp =
      path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  Fd file;
  file.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (file.fd < 0) return errno_text("cannot create", tmp);
  const char* p = contents.data();
  std::size_t left = contents.size();
  while (left > 0) {
    const ssize_t n = ::write(file.fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      std::string e = errno_text("cannot write", tmp);
      ::unlink(tmp.c_str());
      return e;
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  // The data must be on disk before the rename makes it the state file; otherwise a crash
  // right after the rename could leave an empty file under the real name.
  if (::fsync(file.fd) != 0) {
    std::string e = errno_text("cannot fsync", tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  const int fd = file.fd;
  file.fd = -1;
  if (::close(fd) != 0) {
    std::string e = errno_text("cannot close", tmp);
    ::unlink(tmp.c_str());
    return e;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    std::string e = errno_text("cannot rename " + tmp + " to", path);
    ::unlink(tmp.c_str());
    return e;
  }
  // The rename itself lives in the directory: fsync it so the new name survives a crash.
  Fd d;
  d.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d.fd < 0) return errno_text("cannot open directory", dir.string());
  if (::fsync(d.fd) != 0) return errno_text("cannot fsync directory", dir.string());
  return {};
}

}  // namespace pgshift::proxy
