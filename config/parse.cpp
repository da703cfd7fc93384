#include "config/parse.hpp"

#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <map>
#include <type_traits>
#include <variant>

#include "config/keys.hpp"
#include "config/suggest.hpp"

namespace pgshift::config {
namespace {

// A scalar value converted according to its key's type.
using Value = std::variant<std::string, std::int64_t, bool, double, std::vector<std::string>>;

int node_line(const YAML::Node& n) {
  return n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
}

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

std::string range_text(const KeyInfo& key) {
  return "must be between " + std::to_string(key.min) + " and " + std::to_string(key.max);
}

std::string node_kind(const YAML::Node& n) {
  if (n.IsMap()) return "a mapping";
  if (n.IsSequence()) return "a list";
  if (n.IsNull()) return "nothing";
  return "a scalar";
}

class Parser {
 public:
  explicit Parser(ParseOutput& out) : out_(out) {}

  void document(const YAML::Node& root) {
    if (root.IsNull()) return;  // empty file: defaults, validate() reports missing routes
    if (!root.IsMap()) {
      error("", node_line(root),
            "the configuration must be a mapping of keys, got " + node_kind(root));
      out_.unusable = true;
      return;
    }
    mapping(root, "", "", Scope{.config = &out_.config});
  }

 private:
  void error(const std::string& path, int line, std::string message) {
    out_.errors.push_back(ConfigError{path, line, std::move(message)});
  }

  static std::string join(const std::string& path, std::string_view name) {
    return path.empty() ? std::string(name) : path + "." + std::string(name);
  }

  void mapping(const YAML::Node& node, std::string_view section, const std::string& path,
               const Scope& scope) {
    std::map<std::string, int, std::less<>> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node k = it->first;  // copies: operator-> returns a temporary
      const YAML::Node v = it->second;
      const int line = node_line(k);
      if (!k.IsScalar()) {
        error(path, line, "keys must be plain names, got " + node_kind(k));
        continue;
      }
      const std::string& name = k.Scalar();
      const std::string child = join(path, name);
      if (auto [prev, inserted] = seen.emplace(name, line); !inserted) {
        error(child, line,
              "duplicate key " + quote(name) + " (first at line " + std::to_string(prev->second) +
                  ")");
        continue;
      }
      const KeyInfo* key = find_key(section, name);
      if (!key) {
        std::string hint = suggest_key(section, name);
        error(child, line, "unknown key " + quote(name) + (hint.empty() ? "" : "; " + hint));
        continue;
      }
      out_.lines.emplace(child, line);
      entry(*key, v, child, line, scope);
    }
  }

  void entry(const KeyInfo& key, const YAML::Node& v, const std::string& path, int line,
             const Scope& scope) {
    FieldPtr field = key.field ? key.field(scope) : FieldPtr{};
    if (key.type == KeyType::mapping && !key.values.empty() && v.IsScalar()) {
      // A section that also takes a word instead of its keys (control: target).
      if (auto value = convert_choice(key, v, path, line)) {
        store(key, field, std::move(*value), path, line);
      }
      return;
    }
    if (key.type == KeyType::mapping) {
      if (!v.IsNull() && !v.IsMap()) {
        error(path, line, "expected a mapping, got " + node_kind(v));
        return;
      }
      Scope inner = scope;
      if (auto* up = std::get_if<Upstream*>(&field)) inner.upstream = *up;
      if (auto* opt = std::get_if<std::optional<Upstream>*>(&field)) {
        inner.upstream = &(*opt)->emplace();
      }
      if (v.IsMap()) mapping(v, key.children(), path, inner);
      return;
    }
    if (key.type == KeyType::mapping_list) {
      list_of_mappings(key, v, path, line, std::get<std::vector<Route>*>(field), scope);
      return;
    }
    if (auto value = convert(key, v, path, line)) store(key, field, std::move(*value), path, line);
  }

  void list_of_mappings(const KeyInfo& key, const YAML::Node& v, const std::string& path, int line,
                        std::vector<Route>* routes, const Scope& scope) {
    if (v.IsNull()) return;
    if (!v.IsSequence()) {
      error(path, line, "expected a list, got " + node_kind(v));
      return;
    }
    routes->reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      const YAML::Node item = v[i];
      std::string item_path = path + "[" + std::to_string(i) + "]";
      const int item_line = node_line(item) ? node_line(item) : line;
      Scope inner = scope;
      inner.route = &routes->emplace_back();
      out_.lines.emplace(item_path, item_line);
      if (!item.IsMap()) {
        error(item_path, item_line, "expected a mapping, got " + node_kind(item));
        continue;
      }
      mapping(item, key.children(), item_path, inner);
    }
  }

  // YAML node -> Value per the key's type, with the range and choice checks.
  std::optional<Value> convert(const KeyInfo& key, const YAML::Node& v, const std::string& path,
                               int line) {
    if (key.type == KeyType::string_list) return string_list(v, path, line);
    if (v.IsNull()) {
      error(path, line, "missing value");
      return std::nullopt;
    }
    if (!v.IsScalar()) {
      error(path, line, "expected " + expected(key) + ", got " + node_kind(v));
      return std::nullopt;
    }
    const std::string& s = v.Scalar();
    // Secrets are never echoed: the text could be the password itself.
    const std::string got = key.type == KeyType::secret ? "" : ", got " + quote(s);
    switch (key.type) {
      case KeyType::integer:
      case KeyType::port:
      case KeyType::duration_ms: {
        std::int64_t n = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) {
          error(path, line, "expected " + expected(key) + got);
          return std::nullopt;
        }
        if (n < key.min || n > key.max) {
          error(path, line, range_text(key) + got);
          return std::nullopt;
        }
        return Value{n};
      }
      case KeyType::number: {
        double d = 0;
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || !std::isfinite(d)) {
          error(path, line, "expected " + expected(key) + got);
          return std::nullopt;
        }
        if (d < static_cast<double>(key.min) || d > static_cast<double>(key.max)) {
          error(path, line, range_text(key) + got);
          return std::nullopt;
        }
        return Value{d};
      }
      case KeyType::boolean: {
        bool b = false;
        if (!YAML::convert<bool>::decode(v, b)) {
          error(path, line, "expected true or false" + got);
          return std::nullopt;
        }
        return Value{b};
      }
      case KeyType::enumeration: {
        for (auto choice : key.choices()) {
          if (choice == s) return Value{s};
        }
        error(path, line, "must be one of: " + choices_text(key) + got);
        return std::nullopt;
      }
      default:
        return Value{s};
    }
  }

  std::optional<Value> convert_choice(const KeyInfo& key, const YAML::Node& v,
                                      const std::string& path, int line) {
    for (auto choice : key.choices()) {
      if (choice == v.Scalar()) return Value{v.Scalar()};
    }
    error(path, line,
          "must be one of: " + choices_text(key) + ", or a mapping, got " + quote(v.Scalar()));
    return std::nullopt;
  }

  std::optional<Value> string_list(const YAML::Node& v, const std::string& path, int line) {
    if (v.IsNull()) return Value{std::vector<std::string>{}};
    if (!v.IsSequence()) {
      error(path, line, "expected a list of strings, got " + node_kind(v));
      return std::nullopt;
    }
    std::vector<std::string> out;
    bool ok = true;
    for (std::size_t i = 0; i < v.size(); ++i) {
      const YAML::Node item = v[i];
      if (!item.IsScalar()) {
        error(path + "[" + std::to_string(i) + "]", node_line(item) ? node_line(item) : line,
              "expected a string, got " + node_kind(item));
        ok = false;
        continue;
      }
      out.push_back(item.Scalar());
    }
    if (!ok) return std::nullopt;
    return Value{std::move(out)};
  }

  static std::string choices_text(const KeyInfo& key) {
    std::string out;
    for (auto c : key.choices()) out += (out.empty() ? "" : ", ") + std::string(c);
    return out;
  }

  static std::string expected(const KeyInfo& key) {
    switch (key.type) {
      case KeyType::integer:
        return "an integer";
      case KeyType::port:
        return "a port number";
      case KeyType::duration_ms:
        return "an integer number of milliseconds";
      case KeyType::number:
        return "a number";
      case KeyType::boolean:
        return "true or false";
      case KeyType::enumeration:
        return "one of: " + choices_text(key);
      default:
        return "a string";
    }
  }

  void store(const KeyInfo& key, FieldPtr field, Value value, const std::string& path, int line) {
    bool ok = std::visit(
        [&](auto& p) -> bool {
          using F = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<F, std::monostate>) {
            return false;
          } else {
            return assign(*p, value, key);
          }
        },
        field);
    if (!ok) error(path, line, "internal error: key table type does not match its field");
  }

  template <class F>
  static bool assign(F& f, Value& value, const KeyInfo& key) {
    [[maybe_unused]] auto* s = std::get_if<std::string>(&value);
    [[maybe_unused]] auto* n = std::get_if<std::int64_t>(&value);
    if constexpr (std::is_same_v<F, std::string> || std::is_same_v<F, std::optional<std::string>>) {
      if (s) f = std::move(*s);
      return s != nullptr;
    } else if constexpr (std::is_same_v<F, Secret>) {
      if (s) f = Secret::from_spec(std::move(*s));
      return s != nullptr;
    } else if constexpr (std::is_same_v<F, bool>) {
      // An enumeration stored in a bool (credentials: passthrough) sets it.
      if (s && key.type == KeyType::enumeration) {
        f = true;
        return true;
      }
      auto* b = std::get_if<bool>(&value);
      if (b) f = *b;
      return b != nullptr;
    } else if constexpr (std::is_same_v<F, double>) {
      auto* d = std::get_if<double>(&value);
      if (d) f = *d;
      return d != nullptr;
    } else if constexpr (std::is_same_v<F, Millis>) {
      if (n) f = Millis{*n};
      return n != nullptr;
    } else if constexpr (std::is_integral_v<F>) {
      // The table's range fits the field's type (checked by a unit test).
      if (n) f = static_cast<F>(*n);
      return n != nullptr;
    } else if constexpr (std::is_same_v<F, std::vector<std::string>>) {
      auto* l = std::get_if<std::vector<std::string>>(&value);
      if (l) f = std::move(*l);
      return l != nullptr;
    } else if constexpr (std::is_enum_v<F>) {
      return s && from_string(*s, f);
    } else {
      return false;
    }
  }

  ParseOutput& out_;
};

}  // namespace

ParseOutput parse_yaml(const std::string& text, const std::string& source_name) {
  ParseOutput out;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    int line = e.mark.line >= 0 ? e.mark.line + 1 : 0;
    out.errors.push_back(ConfigError{"", line, "invalid YAML in " + source_name + ": " + e.msg});
    out.unusable = true;
    return out;
  }
  if (docs.size() > 1) {
    out.errors.push_back(
        ConfigError{"", node_line(docs[1]), source_name + " holds more than one YAML document"});
  }
  Parser parser(out);
  if (!docs.empty()) parser.document(docs.front());
  return out;
}

}  // namespace pgshift::config
