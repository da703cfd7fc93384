#include "config/secret.hpp"

#include <cstdlib>
#include <optional>
#include <string_view>

#include "config/files.hpp"

namespace pgshift::config {
namespace {

constexpr std::string_view kEnvPrefix = "${env:";
constexpr std::string_view kFilePrefix = "${file:";
constexpr std::size_t kMaxSecretFile = 64 * 1024;

bool is_reference(std::string_view s) {
  return s.size() >= 3 && s.substr(0, 2) == "${" && s.back() == '}';
}

// The text between `prefix` and the closing brace, if `s` is such a reference.
std::optional<std::string_view> inner(std::string_view s, std::string_view prefix) {
  if (!is_reference(s) || s.substr(0, prefix.size()) != prefix) return std::nullopt;
  return s.substr(prefix.size(), s.size() - prefix.size() - 1);
}

}  // namespace

Secret Secret::from_spec(std::string spec) {
  Secret s;
  s.spec_ = std::move(spec);
  return s;
}

Secret::Kind Secret::kind() const {
  if (spec_.empty()) return Kind::none;
  if (!is_reference(spec_)) return Kind::literal;
  if (auto v = inner(spec_, kEnvPrefix)) return v->empty() ? Kind::invalid : Kind::env;
  if (auto f = inner(spec_, kFilePrefix)) return f->empty() ? Kind::invalid : Kind::file;
  return Kind::invalid;
}

std::string Secret::source() const {
  switch (kind()) {
    case Kind::env:
      return std::string(*inner(spec_, kEnvPrefix));
    case Kind::file:
      return std::string(*inner(spec_, kFilePrefix));
    default:
      return {};
  }
}

std::string Secret::describe() const {
  switch (kind()) {
    case Kind::none:
      return "none";
    case Kind::literal:
      return "literal";
    case Kind::env:
      return "env:" + source();
    case Kind::file:
      return "file:" + source();
    case Kind::invalid:
      return "invalid reference";
  }
  return "none";
}

bool Secret::resolve(std::string& error) {
  value_.clear();
  switch (kind()) {
    case Kind::none:
      return true;
    case Kind::literal:
      value_ = spec_;
      return true;
    case Kind::env: {
      std::string name = source();
      const char* v = std::getenv(name.c_str());
      if (v == nullptr) {
        error = "environment variable '" + name + "' is not set";
        return false;
      }
      if (*v == '\0') {
        error = "environment variable '" + name + "' is empty";
        return false;
      }
      value_ = v;
      return true;
    }
    case Kind::file: {
      std::string path = source();
      auto text = read_text_file(path, kMaxSecretFile, error);
      if (!text) {
        error = "secret file: " + error;
        return false;
      }
      while (!text->empty() && (text->back() == '\n' || text->back() == '\r')) text->pop_back();
      if (text->empty()) {
        error = "secret file '" + path + "' is empty";
        return false;
      }
      value_ = std::move(*text);
      return true;
    }
    case Kind::invalid:
      break;
  }
  error = "unsupported secret reference; use ${env:NAME}, ${file:PATH} or a literal";
  return false;
}

}  // namespace pgshift::config
