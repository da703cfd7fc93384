#include "files.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace pgshift::test {

namespace fs = std::filesystem;

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const fs::path& path, std::string_view content, fs::perms mode) {
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + path.string());
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
  }
  fs::permissions(path, mode, fs::perm_options::replace);
}

bool running_as_root() {
  return ::geteuid() == 0;
}

UserIds lookup_user(const std::string& name) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  int rc = ::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
  if (rc != 0 || found == nullptr) throw std::runtime_error("no such OS user: " + name);
  return {found->pw_uid, found->pw_gid};
}

void chown_to_user(const fs::path& path, const std::string& user) {
  if (!running_as_root()) return;
  const UserIds ids = lookup_user(user);
  auto change = [&](const fs::path& p) {
    if (::lchown(p.c_str(), ids.uid, ids.gid) != 0) {
      throw std::system_error(errno, std::generic_category(), "chown " + p.string());
    }
  };
  change(path);
  if (fs::is_directory(fs::symlink_status(path))) {
    for (const auto& entry : fs::recursive_directory_iterator(path)) change(entry.path());
  }
}

}  // namespace pgshift::test
