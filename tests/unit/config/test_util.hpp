#pragma once
// Helpers for the config tests: temporary directories, scoped environment variables and an
// exact-set matcher for ConfigErrors.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "config/load.hpp"

namespace pgshift::config::test {

// A fresh directory, removed with everything in it when the object goes away.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "pgshift-config-XXXXXX");
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  // Writes `text` to `name` (sub-directories created) and returns the full path.
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

// Sets (or unsets) an environment variable and restores the old state afterwards.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

struct Expected {
  std::string path;
  int line;
  std::string text;  // substring of the message
};

inline std::string dump(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += "  " + e.to_string() + "\n";
  return out.empty() ? "  (none)\n" : out;
}

// Every expected error is reported, and nothing else.
inline ::testing::AssertionResult has_exactly(const std::vector<ConfigError>& errors,
                                              const std::vector<Expected>& expected) {
  std::vector<bool> used(errors.size(), false);
  std::string missing;
  for (const auto& x : expected) {
    bool found = false;
    for (std::size_t i = 0; i < errors.size() && !found; ++i) {
      const auto& e = errors[i];
      if (!used[i] && e.path == x.path && e.line == x.line &&
          e.message.find(x.text) != std::string::npos) {
        used[i] = found = true;
      }
    }
    if (!found) {
      missing += "  " + x.path + " (line " + std::to_string(x.line) + "): ..." + x.text + "...\n";
    }
  }
  std::string extra;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (!used[i]) extra += "  " + errors[i].to_string() + "\n";
  }
  if (missing.empty() && extra.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "missing:\n"
         << (missing.empty() ? "  (none)\n" : missing) << "unexpected:\n"
         << (extra.empty() ? "  (none)\n" : extra) << "all reported:\n"
         << dump(errors);
}

inline std::string testdata(const std::string& name) {
  return std::string(CONFIG_TESTDATA_DIR) + "/" + name;
}

}  // namespace pgshift::config::test
