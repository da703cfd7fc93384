// routes[].pool.max_client_connections bookkeeping: the lock-free per-route count, the RAII
// token a session holds, and the count being carried across reloads by build_snapshot.
// (End to end against PostgreSQL: tests/integration/client_limit_test.cpp.)
#include "proxy/runtime/client_slots.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "config/load.hpp"
#include "proxy/runtime/runtime.hpp"

namespace pgshift::proxy {
namespace {

TEST(ClientSlotsTest, TakesUpToTheLimitAndRefusesTheNext) {
  auto slots = std::make_shared<ClientSlots>();
  std::vector<ClientSlot> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(ClientSlot::try_take(slots, 3));
    EXPECT_TRUE(held.back()) << i;
  }
  EXPECT_FALSE(ClientSlot::try_take(slots, 3));
  EXPECT_EQ(slots->in_use(), 3);  // a refusal takes nothing
  held.pop_back();                // the token's destructor gives the slot back
  EXPECT_EQ(slots->in_use(), 2);
  EXPECT_TRUE(ClientSlot::try_take(slots, 3));
}

TEST(ClientSlotsTest, LowerLimitRefusesNewOnesAndKeepsTheHeld) {
  auto slots = std::make_shared<ClientSlots>();
  std::vector<ClientSlot> held;
  for (int i = 0; i < 3; ++i) held.push_back(ClientSlot::try_take(slots, 3));
  EXPECT_FALSE(ClientSlot::try_take(slots, 2));
  EXPECT_EQ(slots->in_use(), 3);
  held.pop_back();
  EXPECT_FALSE(ClientSlot::try_take(slots, 2));  // 2 in use, limit 2
  held.pop_back();
  EXPECT_TRUE(ClientSlot::try_take(slots, 2));
}

TEST(ClientSlotsTest, TokenMovesAndResetsOnce) {
  auto slots = std::make_shared<ClientSlots>();
  ClientSlot a = ClientSlot::try_take(slots, 5);
  ClientSlot b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_TRUE(b);
  EXPECT_EQ(slots->in_use(), 1);
  ClientSlot c = ClientSlot::try_take(slots, 5);
  EXPECT_EQ(slots->in_use(), 2);
  c = std::move(b);  // c's own slot is given back, b's moves in
  EXPECT_EQ(slots->in_use(), 1);
  c.reset();
  c.reset();
  EXPECT_EQ(slots->in_use(), 0);
  EXPECT_FALSE(ClientSlot::try_take(nullptr, 5));
}

// Threads race for slots; the count never goes over the limit and ends at zero.
TEST(ClientSlotsTest, NeverOverTheLimitAcrossThreads) {
  auto slots = std::make_shared<ClientSlots>();
  constexpr long kLimit = 4;
  std::atomic<long> holders{0}, max_holders{0}, refusals{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        ClientSlot s = ClientSlot::try_take(slots, kLimit);
        if (!s) {
          refusals.fetch_add(1);
          continue;
        }
        long now = holders.fetch_add(1) + 1;
        long seen = max_holders.load();
        while (now > seen && !max_holders.compare_exchange_weak(seen, now)) {
        }
        holders.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(max_holders.load(), kLimit);
  EXPECT_GT(max_holders.load(), 0);
  EXPECT_EQ(slots->in_use(), 0);
}

config::ConfigPtr config_with(const std::string& routes_yaml) {
  auto loaded = config::load_string(
      "listen: { port: 6432 }\n"
      "admin: { enabled: false }\n"
      "client_auth: { method: trust }\n"
      "routes:\n" +
      routes_yaml);
  EXPECT_TRUE(loaded.ok()) << (loaded.errors.empty() ? "" : loaded.errors[0].to_string());
  return loaded.config;
}

std::string route_yaml(const std::string& name, int max_clients) {
  return "  - name: " + name + "\n    client_database: " + name +
         "\n    source: { host: localhost, user: u, password: p }\n"
         "    pool: { max_client_connections: " +
         std::to_string(max_clients) + " }\n";
}

TEST(ClientSlotsTest, ReloadCarriesTheCountByRouteName) {
  std::vector<std::string> errors;
  auto first_config = config_with(route_yaml("a", 3) + route_yaml("b", 3));
  auto second_config = config_with(route_yaml("c", 3) + route_yaml("a", 1));
  ASSERT_TRUE(first_config && second_config);
  auto first = build_snapshot(first_config, errors);
  ASSERT_TRUE(first) << (errors.empty() ? "" : errors[0]);
  ClientSlot held = ClientSlot::try_take(first->routes[0].client_slots, 3);
  ASSERT_TRUE(held);

  // Route a with a lower limit (and moved to second place), b gone, c new.
  auto second = build_snapshot(second_config, errors, first.get());
  ASSERT_TRUE(second) << (errors.empty() ? "" : errors[0]);
  EXPECT_EQ(second->routes[1].client_slots, first->routes[0].client_slots);
  EXPECT_EQ(second->routes[1].client_slots->in_use(), 1);
  EXPECT_FALSE(ClientSlot::try_take(second->routes[1].client_slots, 1));
  ASSERT_TRUE(second->routes[0].client_slots);
  EXPECT_NE(second->routes[0].client_slots, first->routes[1].client_slots);
  EXPECT_EQ(second->routes[0].client_slots->in_use(), 0);

  held.reset();  // the session that came in before the reload ends
  EXPECT_TRUE(ClientSlot::try_take(second->routes[1].client_slots, 1));
}

}  // namespace
}  // namespace pgshift::proxy
