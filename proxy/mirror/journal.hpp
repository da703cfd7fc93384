#pragma once
// The divergence journal of mirrored writes: one JSON object per line, appended and flushed
// per entry (docs/sync.md, "Mirror mode"). Parameters are redacted unless
// sync.mirror.journal_parameters is true.
//
// Thread-safety: write() may be called from any thread (a mutex).
#include <boost/json/object.hpp>
#include <mutex>
#include <string>

namespace pgshift::mirror {

class Journal {
 public:
  explicit Journal(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  // Appends one line; false (and a logged error, once) when the file cannot be written.
  bool write(const boost::json::object& entry);

 private:
  std::string path_;
  std::mutex mu_;
  bool warned_ = false;
};

}  // namespace pgshift::mirror
