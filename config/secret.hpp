#pragma once
// A secret value from the config: literal, ${env:VAR} or ${file:/path}. The reference is
// kept so a reload (SIGHUP) re-reads the file or variable. The value is never printed:
// operator<< and describe() show only where it comes from.
//
// Thread-safety: none; a Secret is resolved while a Config is being built, then only read.
#include <ostream>
#include <string>

namespace pgshift::config {

class Secret {
 public:
  // Where the value comes from. `invalid` is a "${...}" reference that is neither env: nor
  // file: (or names nothing); resolve() reports it.
  enum class Kind { none, literal, env, file, invalid };

  Secret() = default;
  // spec: the text as written in YAML.
  static Secret from_spec(std::string spec);
  // Resolves the value now. Returns false and sets `error` (naming the source, never the
  // value) if the variable is unset or empty, or the file unreadable or empty. A file's
  // trailing newlines (\n, \r\n) are dropped.
  bool resolve(std::string& error);
  const std::string& value() const { return value_; }
  bool empty() const { return spec_.empty(); }
  std::string describe() const;  // "env:VAR", "file:/path", "literal" or "none"

  Kind kind() const;
  // The variable name (env) or file path (file); empty for the other kinds.
  std::string source() const;

 private:
  std::string spec_, value_;
};
inline std::ostream& operator<<(std::ostream& os, const Secret& s) {
  return os << "<secret " << s.describe() << ">";
}

}  // namespace pgshift::config
