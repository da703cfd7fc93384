#include "routing/function_policy.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace pgshift::routing {
namespace {

TEST(FunctionPolicy, BuiltinListIsSortedAndUnique) {
  const auto names = FunctionPolicy::builtin_allowed();
  EXPECT_GT(names.size(), 200u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(std::adjacent_find(names.begin(), names.end()), names.end());
}

// docs/routing.md lists the built-in allow-list; keep it in step with the code.
TEST(FunctionPolicy, DocsListEveryBuiltin) {
  std::ifstream in(std::string(PGSHIFT_SOURCE_DIR) + "/docs/routing.md");
  ASSERT_TRUE(in) << "docs/routing.md not found";
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const auto names = FunctionPolicy::builtin_allowed();
  for (auto name : names) {
    EXPECT_NE(doc.find("`" + std::string(name) + "`"), std::string::npos) << name;
  }
  EXPECT_NE(doc.find("Built in (" + std::to_string(names.size()) + " names"), std::string::npos);
}

TEST(FunctionPolicy, EveryBuiltinIsAllowed) {
  const FunctionPolicy p;
  for (auto name : FunctionPolicy::builtin_allowed()) {
    EXPECT_EQ(p.classify("", name), FunctionKind::read_only) << name;
    EXPECT_EQ(p.classify("pg_catalog", name), FunctionKind::read_only) << name;
    EXPECT_EQ(p.classify("public", name), FunctionKind::unknown) << name;
  }
}

TEST(FunctionPolicy, KnownWritersAndLocks) {
  const FunctionPolicy p;
  EXPECT_EQ(p.classify("", "nextval"), FunctionKind::write);
  EXPECT_EQ(p.classify("", "setval"), FunctionKind::write);
  EXPECT_EQ(p.classify("", "pg_notify"), FunctionKind::write);
  EXPECT_EQ(p.classify("", "lo_export"), FunctionKind::write);
  EXPECT_EQ(p.classify("", "dblink_exec"), FunctionKind::write);
  EXPECT_EQ(p.classify("ext", "dblink"), FunctionKind::write);
  EXPECT_EQ(p.classify("", "pg_advisory_lock"), FunctionKind::advisory_lock);
  EXPECT_EQ(p.classify("", "pg_try_advisory_lock_shared"), FunctionKind::advisory_lock);
  EXPECT_EQ(p.classify("", "pg_advisory_unlock_shared"), FunctionKind::advisory_unlock);
  EXPECT_EQ(p.classify("", "pg_advisory_xact_lock"), FunctionKind::write);
  EXPECT_EQ(p.classify("", "set_config"), FunctionKind::set_config);
  EXPECT_EQ(p.classify("", "my_fn"), FunctionKind::unknown);
  EXPECT_EQ(to_string(FunctionKind::advisory_lock), "advisory_lock");
}

TEST(FunctionPolicy, ConfiguredExtras) {
  const FunctionPolicy p({"My_Fn", "app.Score", "pg_catalog.hashtext", "setval"});
  EXPECT_EQ(p.classify("", "my_fn"), FunctionKind::read_only);
  EXPECT_EQ(p.classify("app", "score"), FunctionKind::read_only);
  EXPECT_EQ(p.classify("", "score"), FunctionKind::unknown);
  EXPECT_EQ(p.classify("", "hashtext"), FunctionKind::read_only);
  EXPECT_EQ(p.classify("pg_catalog", "hashtext"), FunctionKind::read_only);
  EXPECT_EQ(p.classify("", "setval"), FunctionKind::write);  // deny list wins
}

}  // namespace
}  // namespace pgshift::routing
