#include "temp_dir.hpp"

#include <stdlib.h>

#include <cerrno>
#include <cstdlib>
#include <iostream>
#include <system_error>
#include <utility>

#include "files.hpp"

namespace pgshift::test {

namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix, fs::path base) {
  if (base.empty()) base = fs::temp_directory_path();
  std::string templ = (base / (std::string(prefix) + "-XXXXXX")).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::system_error(errno, std::generic_category(), "mkdtemp " + templ);
  }
  path_ = templ;
  const char* keep = std::getenv("PGSHIFT_KEEP_TEMP");
  keep_ = keep != nullptr && std::string_view(keep) == "1";
}

TempDir::~TempDir() {
  remove();
}

TempDir::TempDir(TempDir&& other) noexcept
    : path_(std::exchange(other.path_, {})), keep_(other.keep_) {}

TempDir& TempDir::operator=(TempDir&& other) noexcept {
  if (this != &other) {
    remove();
    path_ = std::exchange(other.path_, {});
    keep_ = other.keep_;
  }
  return *this;
}

void TempDir::chown_to(const std::string& user) const {
  chown_to_user(path_, user);
}

void TempDir::remove() {
  if (path_.empty()) return;
  if (keep_) {
    std::cerr << "[pgshift-test] keeping " << path_ << "\n";
  } else {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  path_.clear();
}

}  // namespace pgshift::test
