#pragma once
// A secret value from the config: literal, ${env:VAR} or ${file:/path}. The reference is
// kept so a reload (SIGHUP) re-reads the file or variable. The value is never printed:
// operator<< and describe() show only where it comes from.
#include <ostream>
#include <string>

namespace pgshift::config {

class Secret {
 public:
  Secret() = default;
  // spec: the text as written in YAML.
  static Secret from_spec(std::string spec);
  // Resolves the value now. Returns false and sets `error` (naming the source, never the
  // value) if the variable is unset or the file unreadable. A file's trailing newline is
  // dropped.
  bool resolve(std::string& error);
  const std::string& value() const { return value_; }
  bool empty() const { return spec_.empty(); }
  std::string describe() const;  // "env:VAR", "file:/path", "literal" or "none"

 private:
  std::string spec_, value_;
};
inline std::ostream& operator<<(std::ostream& os, const Secret& s) {
  return os << "<secret " << s.describe() << ">";
}

}  // namespace pgshift::config
