// The key table (its parts are in keys_front.cpp, keys_routes.cpp and keys_process.cpp) and
// what walks it: lookup, the walk over a Config, display of values.
#include "config/keys.hpp"

#include <array>
#include <cstdio>
#include <type_traits>
#include <vector>

#include "config/key_tables.hpp"

namespace pgshift::config {
namespace {

// The whole table, in the order of the reference in docs/configuration.md.
const std::vector<KeyInfo>& all_keys() {
  static const std::vector<KeyInfo> keys = [] {
    std::vector<KeyInfo> v;
    for (auto part : {key_tables::front(), key_tables::routes(), key_tables::process()}) {
      v.insert(v.end(), part.begin(), part.end());
    }
    return v;
  }();
  return keys;
}

std::string_view after_last_dot(std::string_view p) {
  auto i = p.rfind('.');
  return i == std::string_view::npos ? p : p.substr(i + 1);
}

std::string join(const std::string& prefix, std::string_view name) {
  return prefix.empty() ? std::string(name) : prefix + "." + std::string(name);
}

void walk(std::string_view section, const std::string& prefix, Scope scope, const KeyVisitor& f) {
  for (const auto& key : all_keys()) {
    if (key.parent() != section) continue;
    std::string path = join(prefix, key.name());
    FieldPtr field = key.field ? key.field(scope) : FieldPtr{};
    if (key.type == KeyType::mapping_list) {
      auto& routes = *std::get<std::vector<Route>*>(field);
      for (std::size_t i = 0; i < routes.size(); ++i) {
        Scope inner = scope;
        inner.route = &routes[i];
        walk(key.children(), path + "[" + std::to_string(i) + "]", inner, f);
      }
    } else if (key.type == KeyType::mapping) {
      Scope inner = scope;
      if (auto* up = std::get_if<Upstream*>(&field)) inner.upstream = *up;
      if (auto* opt = std::get_if<std::optional<Upstream>*>(&field)) {
        if (!(*opt)->has_value()) continue;
        inner.upstream = &***opt;
      }
      walk(key.children(), path, inner, f);
    } else {
      f(key, path, field, scope);
    }
  }
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

}  // namespace

std::string_view KeyInfo::name() const {
  return after_last_dot(path);
}

std::string_view KeyInfo::parent() const {
  auto i = path.rfind('.');
  return i == std::string_view::npos ? std::string_view{} : path.substr(0, i);
}

std::string_view KeyInfo::children() const {
  return section.empty() ? path : section;
}

std::vector<std::string_view> KeyInfo::choices() const {
  std::vector<std::string_view> out;
  std::string_view rest = values;
  while (!rest.empty()) {
    auto i = rest.find('|');
    out.push_back(rest.substr(0, i));
    if (i == std::string_view::npos) break;
    rest.remove_prefix(i + 1);
  }
  return out;
}

std::span<const KeyInfo> key_table() {
  return all_keys();
}

const KeyInfo* find_key(std::string_view parent, std::string_view name) {
  for (const auto& key : all_keys()) {
    if (key.parent() == parent && key.name() == name) return &key;
  }
  return nullptr;
}

std::string_view to_string(KeyType t) {
  switch (t) {
    case KeyType::string:
      return "string";
    case KeyType::path:
      return "path";
    case KeyType::integer:
      return "integer";
    case KeyType::port:
      return "port";
    case KeyType::duration_ms:
      return "duration (ms)";
    case KeyType::boolean:
      return "boolean";
    case KeyType::number:
      return "number";
    case KeyType::enumeration:
      return "enum";
    case KeyType::secret:
      return "secret";
    case KeyType::string_list:
      return "list of strings";
    case KeyType::mapping:
      return "mapping";
    case KeyType::mapping_list:
      return "list of mappings";
  }
  return "unknown";
}

void for_each_key(Config& c, const KeyVisitor& f) {
  walk("", "", Scope{.config = &c}, f);
}

std::string display(const FieldPtr& field, const KeyInfo& key) {
  return std::visit(
      [&key](const auto& v) -> std::string {
        using P = std::remove_pointer_t<std::decay_t<decltype(v)>>;
        [[maybe_unused]] const P* p = nullptr;
        if constexpr (!std::is_same_v<P, std::monostate>) p = v;
        if constexpr (std::is_same_v<P, std::monostate>) {
          return "";
        } else if constexpr (std::is_same_v<P, std::string>) {
          return *p;
        } else if constexpr (std::is_same_v<P, std::optional<std::string>>) {
          return p->value_or("");
        } else if constexpr (std::is_same_v<P, bool>) {
          // An enumeration stored in a bool (credentials) is set when the value is present.
          if (key.type == KeyType::enumeration) return *p ? std::string(key.values) : "";
          return *p ? "true" : "false";
        } else if constexpr (std::is_same_v<P, double>) {
          return format_number(*p);
        } else if constexpr (std::is_same_v<P, Millis>) {
          return std::to_string(p->count());
        } else if constexpr (std::is_integral_v<P>) {
          return std::to_string(*p);
        } else if constexpr (std::is_same_v<P, std::vector<std::string>>) {
          std::string out;
          for (const auto& s : *p) out += (out.empty() ? "" : ", ") + s;
          return out;
        } else if constexpr (std::is_same_v<P, Secret>) {
          return p->empty() ? "" : p->describe();
        } else if constexpr (std::is_enum_v<P>) {
          return std::string(to_string(*p));
        } else {
          return "";
        }
      },
      field);
}

std::optional<double> numeric(const FieldPtr& field) {
  return std::visit(
      [](const auto& v) -> std::optional<double> {
        using P = std::remove_pointer_t<std::decay_t<decltype(v)>>;
        [[maybe_unused]] const P* p = nullptr;
        if constexpr (!std::is_same_v<P, std::monostate>) p = v;
        if constexpr (std::is_same_v<P, std::monostate>) {
          return std::nullopt;
        } else if constexpr (std::is_same_v<P, Millis>) {
          return static_cast<double>(p->count());
        } else if constexpr (std::is_same_v<P, double>) {
          return *p;
        } else if constexpr (std::is_integral_v<P> && !std::is_same_v<P, bool>) {
          return static_cast<double>(*p);
        } else {
          return std::nullopt;
        }
      },
      field);
}

}  // namespace pgshift::config
