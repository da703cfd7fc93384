#pragma once
// A fresh private directory (mkdtemp, mode 0700), removed recursively on destruction.
// Set PGSHIFT_KEEP_TEMP=1 to keep every TempDir for post-mortem debugging.
// Not thread-safe; movable.
#include <filesystem>
#include <string>
#include <string_view>

namespace pgshift::test {

class TempDir {
 public:
  // Creates base/prefix-XXXXXX; base defaults to $TMPDIR or /tmp.
  explicit TempDir(std::string_view prefix = "pgshift-test", std::filesystem::path base = {});
  ~TempDir();
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

  // Gives the directory and everything in it to an OS user (e.g. "postgres", which initdb
  // and postgres must run as). No-op unless running as root.
  void chown_to(const std::string& user) const;
  void keep() { keep_ = true; }  // do not remove on destruction

 private:
  void remove();

  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace pgshift::test
