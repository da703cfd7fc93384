// keep_restart_only_values (issue 16.5): a reload keeps the running value of every key that
// cannot change at runtime, names it, and applies everything else.
#include <gtest/gtest.h>

#include "config/load.hpp"

namespace pgshift::config {
namespace {

Config one_route(const std::string& name) {
  Config c;
  c.routes.emplace_back();
  c.routes.back().name = name;
  c.routes.back().target.emplace();
  return c;
}

TEST(ReloadKeep, RestartOnlyKeysKeepTheirRunningValue) {
  const Config running = one_route("auth");
  Config next = running;
  next.admin.port = 9999;
  next.routes[0].pool.mode = PoolMode::transaction;
  next.threads = 3;
  next.routes[0].pool.size = 77;  // reloadable: applied
  next.log_level = "debug";       // reloadable: applied
  const auto kept = keep_restart_only_values(running, next);
  std::vector<std::string> paths;
  for (const auto& k : kept) paths.push_back(k.path);
  std::sort(paths.begin(), paths.end());
  EXPECT_EQ(paths, (std::vector<std::string>{"admin.port", "routes[auth].pool.mode", "threads"}));
  EXPECT_EQ(next.admin.port, running.admin.port);
  EXPECT_EQ(next.routes[0].pool.mode, PoolMode::session);
  EXPECT_EQ(next.threads, running.threads);
  EXPECT_EQ(next.routes[0].pool.size, 77);
  EXPECT_EQ(next.log_level, "debug");
  for (const auto& k : kept) {
    if (k.path == "routes[auth].pool.mode") {
      EXPECT_EQ(k.running, "session");
      EXPECT_EQ(k.configured, "transaction");
    }
  }
  EXPECT_TRUE(restart_required_changes(running, next).empty());
}

TEST(ReloadKeep, NewRoutesTakeTheirConfiguredValues) {
  const Config running = one_route("auth");
  Config next = running;
  next.routes.push_back(running.routes[0]);
  next.routes.back().name = "scores";
  next.routes.back().pool.mode = PoolMode::transaction;
  std::swap(next.routes[0], next.routes[1]);  // order does not matter
  EXPECT_TRUE(keep_restart_only_values(running, next).empty());
  EXPECT_EQ(next.routes[0].pool.mode, PoolMode::transaction);
}

}  // namespace
}  // namespace pgshift::config
