// load_file / load_string: parse (parse.cpp), resolve relative paths and secrets, validate
// (validate.cpp), and hand out an immutable snapshot only when nothing is wrong.
#include "config/load.hpp"

#include <algorithm>
#include <filesystem>

#include "config/files.hpp"
#include "config/keys.hpp"
#include "config/parse.hpp"

namespace pgshift::config {
namespace {

constexpr std::size_t kMaxConfigFile = 16 * 1024 * 1024;

namespace fs = std::filesystem;

std::string rebase(const std::string& file, const fs::path& base) {
  if (file.empty() || base.empty() || fs::path(file).is_absolute()) return file;
  return (base / file).lexically_normal().string();
}

// Relative file names (and ${file:...} secrets) are taken relative to the config file.
void resolve_paths(Config& c, const fs::path& base) {
  for_each_key(c, [&base](const KeyInfo& key, const std::string&, FieldPtr field, const Scope&) {
    if (key.type == KeyType::path) {
      auto* s = std::get<std::string*>(field);
      *s = rebase(*s, base);
    } else if (key.type == KeyType::secret) {
      auto* secret = std::get<Secret*>(field);
      if (secret->kind() == Secret::Kind::file) {
        *secret = Secret::from_spec("${file:" + rebase(secret->source(), base) + "}");
      }
    }
  });
}

void resolve_secrets(Config& c, const SourceLines& lines, std::vector<ConfigError>& errors) {
  for_each_key(c, [&](const KeyInfo& key, const std::string& path, FieldPtr field, const Scope&) {
    if (key.type != KeyType::secret) return;
    std::string error;
    if (!std::get<Secret*>(field)->resolve(error)) {
      errors.push_back(ConfigError{path, line_of(lines, path), error});
    }
  });
}

bool under(std::string_view path, std::string_view prefix) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '.' || path[prefix.size()] == '[';
}

LoadResult load_text(const std::string& text, const std::string& source_name,
                     const fs::path& base) {
  ParseOutput parsed = parse_yaml(text, source_name);
  LoadResult result;
  result.errors = std::move(parsed.errors);
  if (parsed.unusable) return result;

  Config& c = parsed.config;
  resolve_paths(c, base);
  resolve_secrets(c, parsed.lines, result.errors);
  // A key that failed to parse kept its default; checks below it would only echo that.
  const std::vector<ConfigError> parse_errors = result.errors;
  for (auto& e : validate(c, parsed.lines)) {
    bool echo = std::any_of(parse_errors.begin(), parse_errors.end(), [&](const ConfigError& p) {
      return !p.path.empty() && under(e.path, p.path);
    });
    if (!echo) result.errors.push_back(std::move(e));
  }
  std::stable_sort(result.errors.begin(), result.errors.end(),
                   [](const ConfigError& a, const ConfigError& b) { return a.line < b.line; });
  if (result.errors.empty()) result.config = std::make_shared<const Config>(std::move(c));
  return result;
}

}  // namespace

std::string ConfigError::to_string() const {
  std::string out = path;
  if (line > 0)
    out += (out.empty() ? "line " : " (line ") + std::to_string(line) + (path.empty() ? "" : ")");
  return out.empty() ? message : out + ": " + message;
}

int line_of(const SourceLines& lines, std::string_view path) {
  while (!path.empty()) {
    if (auto it = lines.find(path); it != lines.end()) return it->second;
    auto cut = path.find_last_of(".[");
    path = cut == std::string_view::npos ? std::string_view{} : path.substr(0, cut);
  }
  return 0;
}

LoadResult load_string(const std::string& yaml, const std::string& source_name) {
  return load_text(yaml, source_name, fs::path{});
}

LoadResult load_file(const std::string& path) {
  std::string error;
  auto text = read_text_file(path, kMaxConfigFile, error);
  if (!text) {
    LoadResult result;
    result.errors.push_back(ConfigError{"", 0, error});
    return result;
  }
  std::error_code ec;
  fs::path absolute = fs::absolute(path, ec);
  return load_text(*text, path, ec ? fs::path{} : absolute.parent_path());
}

}  // namespace pgshift::config
