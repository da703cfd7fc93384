// The key table is the single source of truth: check it against Config's defaults and
// types, and check docs/configuration.md against it.
#include "config/keys.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "config/load.hpp"
#include "config/suggest.hpp"

namespace pgshift::config {
namespace {

// A Config in which every section exists once: one route, with a target.
Config every_section() {
  Config c;
  c.routes.emplace_back();
  c.routes.back().target.emplace();
  return c;
}

TEST(KeyTable, PathsAreUniqueAndParentsAreSections) {
  std::set<std::string_view> paths;
  std::set<std::string_view> sections{""};
  for (const auto& k : key_table()) {
    EXPECT_TRUE(paths.insert(k.path).second) << "duplicate " << k.path;
    if (k.type == KeyType::mapping || k.type == KeyType::mapping_list) {
      sections.insert(k.children());
    }
  }
  for (const auto& k : key_table()) {
    EXPECT_TRUE(sections.count(k.parent())) << k.path << " has no section " << k.parent();
    EXPECT_FALSE(k.description.empty()) << k.path;
  }
}

TEST(KeyTable, DurationKeysEndInMs) {
  for (const auto& k : key_table()) {
    bool ms = k.name().size() > 3 && k.name().substr(k.name().size() - 3) == "_ms";
    EXPECT_EQ(ms, k.type == KeyType::duration_ms) << k.path;
  }
}

TEST(KeyTable, DefaultsMatchTheConfigStruct) {
  Config c = every_section();
  std::map<std::string, int> visits;
  for_each_key(c, [&](const KeyInfo& k, const std::string& path, FieldPtr field, const Scope&) {
    ++visits[std::string(k.path)];
    EXPECT_EQ(display(field, k), k.default_value) << path;
  });
  for (const auto& k : key_table()) {
    if (k.type == KeyType::mapping || k.type == KeyType::mapping_list) continue;
    int expected = k.parent().substr(0, 8) == "upstream" ? 2 : 1;  // source and target
    EXPECT_EQ(visits[std::string(k.path)], expected) << k.path;
  }
}

TEST(KeyTable, RangesFitTheFieldTypes) {
  Config c = every_section();
  for_each_key(c, [](const KeyInfo& k, const std::string& path, FieldPtr field, const Scope&) {
    std::visit(
        [&](auto p) {
          using P = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_integral_v<P> && !std::is_same_v<P, bool>) {
            EXPECT_LE(k.min, k.max) << path;
            // Compared as long double: a 64-bit unsigned field's max does not fit int64.
            using L = long double;
            EXPECT_GE(L(k.min), L(std::numeric_limits<P>::min())) << path;
            EXPECT_LE(L(k.max), L(std::numeric_limits<P>::max())) << path;
          } else if constexpr (std::is_same_v<P, Millis> || std::is_same_v<P, double>) {
            EXPECT_LE(k.min, k.max) << path;
            EXPECT_GE(k.min, 0) << path;
          }
        },
        field);
  });
}

TEST(KeyTable, EnumerationChoicesAreTheEnumSpellings) {
  Config c = every_section();
  for_each_key(c, [](const KeyInfo& k, const std::string& path, FieldPtr field, const Scope&) {
    if (k.type != KeyType::enumeration) return;
    ASSERT_FALSE(k.choices().empty()) << path;
    std::visit(
        [&](auto p) {
          using P = std::remove_pointer_t<decltype(p)>;
          if constexpr (std::is_enum_v<P>) {
            for (auto choice : k.choices()) {
              P value{};
              ASSERT_TRUE(from_string(choice, value)) << path << ": " << choice;
              EXPECT_EQ(to_string(value), choice);
            }
            // And every enumerator is listed: the enums are dense from 0.
            EXPECT_EQ(to_string(static_cast<P>(k.choices().size())), "unknown") << path;
          }
        },
        field);
  });
}

TEST(KeyTable, FindKey) {
  ASSERT_NE(find_key("upstream.tls", "mode"), nullptr);
  EXPECT_EQ(find_key("upstream.tls", "mode")->path, "upstream.tls.mode");
  EXPECT_EQ(find_key("", "routes")->children(), "routes[]");
  EXPECT_EQ(find_key("routes[]", "target")->children(), "upstream");
  EXPECT_EQ(find_key("", "port"), nullptr);
}

// --- docs/configuration.md is checked against the table ----------------------------------

std::string type_text(const KeyInfo& k) {
  std::string t(to_string(k.type));
  if (k.type == KeyType::enumeration) {
    std::string list;
    for (auto c : k.choices()) list += (list.empty() ? "" : ", ") + std::string(c);
    t += ": " + list;
  } else if (k.type == KeyType::integer || k.type == KeyType::duration_ms ||
             k.type == KeyType::number) {
    t += " " + std::to_string(k.min) + ".." + std::to_string(k.max);
  }
  return t;
}

// The first four columns of the key's row in the reference tables.
std::string doc_row(const KeyInfo& k) {
  std::string def = !k.default_value.empty() ? "`" + std::string(k.default_value) + "`"
                    : k.required             ? "required"
                                             : "—";
  std::string reload = k.type == KeyType::mapping ? "—" : k.reloadable ? "yes" : "no";
  return "| `" + std::string(k.path) + "` | " + type_text(k) + " | " + def + " | " + reload + " |";
}

TEST(KeyTable, DocsListEveryKeyAsDeclared) {
  std::ifstream in(std::string(PGSHIFT_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in) << "docs/configuration.md not found";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string docs = ss.str();
  const bool print = std::getenv("PGSHIFT_PRINT_KEY_ROWS") != nullptr;
  for (const auto& k : key_table()) {
    std::string row = doc_row(k);
    if (print) std::cout << row << " " << k.description << " |\n";
    EXPECT_NE(docs.find(row), std::string::npos) << "docs/configuration.md lacks: " << row;
  }
}

// --- suggestions ---------------------------------------------------------------------------

TEST(Suggest, EditDistanceCountsTranspositionsOnce) {
  EXPECT_EQ(edit_distance("port", "port"), 0u);
  EXPECT_EQ(edit_distance("prot", "port"), 1u);
  EXPECT_EQ(edit_distance("hots", "host"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(edit_distance("databse", "database"), 1u);
}

TEST(Suggest, Hints) {
  EXPECT_EQ(suggest_key("listen", "prot"), "did you mean 'port'?");
  EXPECT_EQ(suggest_key("upstream", "databse"), "did you mean 'database'?");
  EXPECT_EQ(suggest_key("routes[]", "host"), "did you mean 'source.host' or 'target.host'?");
  EXPECT_EQ(suggest_key("", "users_file"), "did you mean 'client_auth.users_file'?");
  EXPECT_EQ(suggest_key("", "shutdown_timeout"),
            "did you mean 'shutdown_timeout_ms'? (durations are integer milliseconds)");
  EXPECT_EQ(suggest_key("", "zzzzzz"), "");
}

// --- reload --------------------------------------------------------------------------------

TEST(Reload, ReportsOnlyKeysThatNeedARestart) {
  Config a = every_section();
  a.routes[0].name = "auth";
  Config b = a;
  b.routes[0].pool.size = 99;           // reloadable
  b.routes[0].target->host = "new-db";  // reloadable
  b.log_level = "debug";                // reloadable
  EXPECT_TRUE(restart_required_changes(a, b).empty());

  b.listen.port = 7000;
  b.routes[0].pool.mode = PoolMode::transaction;
  b.threads = 3;
  auto changes = restart_required_changes(a, b);
  std::sort(changes.begin(), changes.end());
  EXPECT_EQ(changes,
            (std::vector<std::string>{"listen.port", "routes[auth].pool.mode", "threads"}));
}

TEST(Reload, RoutesAreMatchedByName) {
  Config a = every_section();
  a.routes[0].name = "one";
  a.routes.push_back(a.routes[0]);
  a.routes[1].name = "two";
  a.routes[1].sync.mode = SyncMode::logical;
  Config b = a;
  std::swap(b.routes[0], b.routes[1]);  // reordering is not a change
  b.routes.push_back(b.routes[0]);      // adding a route is not a change
  b.routes.back().name = "three";
  EXPECT_TRUE(restart_required_changes(a, b).empty());
}

}  // namespace
}  // namespace pgshift::config
