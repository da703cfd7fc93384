#include "routing/router.hpp"

#include <gtest/gtest.h>

#include <memory>

#include "routing/route_table.hpp"

namespace pgshift::routing {
namespace {

using SC = StatementClass;

// Keys with known buckets (split_test.cpp pins them): "user-2" = 1220, "user-0" = 9328.
constexpr std::string_view kLowKey = "user-2";
constexpr std::string_view kHighKey = "user-0";

MigrationState state(Phase phase, std::uint32_t bp, Phase previous = Phase::source_only) {
  MigrationState s;
  s.phase = phase;
  s.previous_phase = previous;
  s.read_percent = *ReadPercent::from_basis_points(bp);
  return s;
}

struct Case {
  const char* name;
  MigrationState state;
  SC statement;
  std::string_view key;
  RouteDecision want;
  bool target_healthy = true;
  bool session_pinned = false;
  bool has_target = true;
  bool source_healthy = true;
};

TEST(Router, DecisionTable) {
  const auto sync50 = state(Phase::sync, 5000);
  const auto tp50 = state(Phase::target_primary, 5000, Phase::cutover);
  // clang-format off
  const Case cases[] = {
      {"read, low bucket -> target", sync50, SC::read_only, kLowKey,
       {Side::target, Reason::split_target}},
      {"read, high bucket -> source", sync50, SC::read_only, kHighKey,
       {Side::source, Reason::split_source}},
      {"read at 0 % -> source", state(Phase::sync, 0), SC::read_only, kLowKey,
       {Side::source, Reason::split_source}},
      {"read at 100 % -> target", state(Phase::sync, 10000), SC::read_only, kHighKey,
       {Side::target, Reason::split_target}},
      {"source_only phase splits too", state(Phase::source_only, 5000), SC::read_only, kLowKey,
       {Side::target, Reason::split_target}},
      {"write -> source", sync50, SC::write, kLowKey,
       {Side::source, Reason::authoritative_write}},
      {"ddl -> source", sync50, SC::ddl, kLowKey,
       {Side::source, Reason::authoritative_write}},
      {"plain BEGIN -> source", sync50, SC::transaction_begin, kLowKey,
       {Side::source, Reason::authoritative_statement}},
      {"BEGIN READ ONLY -> split", sync50, SC::transaction_begin_read_only, kLowKey,
       {Side::target, Reason::split_target}},
      {"session state -> source", sync50, SC::session_state, kLowKey,
       {Side::source, Reason::authoritative_statement}},
      {"set_local outside a transaction -> source", sync50, SC::set_local, kLowKey,
       {Side::source, Reason::authoritative_statement}},
      {"other -> source", sync50, SC::other, kLowKey,
       {Side::source, Reason::authoritative_statement}},
      {"empty -> authoritative", sync50, SC::empty, kLowKey,
       {Side::source, Reason::empty_query}},
      {"target unhealthy -> fallback", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::target_unhealthy_fallback}, false},
      {"target unhealthy, high bucket: plain split", sync50, SC::read_only, kHighKey,
       {Side::source, Reason::split_source}, false},
      {"pinned session reads -> source", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::session_pinned}, true, true},
      {"no target configured", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::no_target}, true, false, false},
      {"cutover holds reads on the old side", state(Phase::cutover, 5000, Phase::sync),
       SC::read_only, kLowKey, {Side::source, Reason::cutover_in_progress}},
      {"rollback cutover: target still authoritative",
       state(Phase::cutover, 5000, Phase::target_primary), SC::write, kLowKey,
       {Side::target, Reason::authoritative_write}},
      {"target_primary: writes -> target", tp50, SC::write, kHighKey,
       {Side::target, Reason::authoritative_write}},
      {"target_primary: low bucket reads target", tp50, SC::read_only, kLowKey,
       {Side::target, Reason::split_target}},
      {"target_primary: high bucket reads source", tp50, SC::read_only, kHighKey,
       {Side::source, Reason::split_source}},
      {"target_primary: source unhealthy", tp50, SC::read_only, kHighKey,
       {Side::target, Reason::source_unhealthy_fallback}, true, false, true, false},
      {"target_primary: target unhealthy still gets writes", tp50, SC::write, kHighKey,
       {Side::target, Reason::authoritative_write}, false},
      {"target_only: everything -> target", state(Phase::target_only, 0, Phase::target_primary),
       SC::write, kHighKey, {Side::target, Reason::target_only}},
      {"target_only: reads -> target", state(Phase::target_only, 0, Phase::target_primary),
       SC::read_only, kHighKey, {Side::target, Reason::target_only}},
  };
  // clang-format on
  for (const auto& c : cases) {
    RouterInput in;
    in.state = &c.state;
    in.statement = c.statement;
    in.key = c.key;
    in.target_healthy = c.target_healthy;
    in.source_healthy = c.source_healthy;
    in.session_pinned = c.session_pinned;
    in.has_target = c.has_target;
    const RouteDecision got = decide(in);
    EXPECT_EQ(got, c.want) << c.name << ": got " << to_string(got.side) << "/"
                           << to_string(got.reason);
  }
}

// Reads that call functions pgshift does not know, and statements that look like reads but
// lock or write, are never split candidates: they go to the authoritative side.
TEST(Router, UnknownFunctionsAndLockingReadsAreNotSplit) {
  const auto s = state(Phase::sync, 10000);  // every split read would go to the target
  const Classifier classifier;
  RouterInput in;
  in.state = &s;
  in.key = kLowKey;
  for (std::string_view sql : {
           "SELECT my_report(42)",
           "SELECT my_report(42); SELECT 1",
           "EXPLAIN ANALYZE SELECT my_report(42)",
           "SELECT 1 FROM t FOR UPDATE",
           "SELECT nextval('s')",
           "SELECT pg_advisory_lock(1)",
           "INSERT INTO t SELECT 1",
           "SET transaction_read_only = off",
           "COPY (SELECT f()) TO STDOUT",
           "SELECT 1; DELETE FROM t",
           "SELECT 1 INTO TEMP x",
       }) {
    const Classification c = classifier.classify(sql);
    in.statement = c.kind;
    const RouteDecision d = decide(in);
    EXPECT_EQ(d.side, Side::source) << sql << ": " << to_string(d.reason);
  }
  in.statement = classifier.classify("SELECT 1").kind;
  EXPECT_EQ(decide(in).side, Side::target);  // the control: a plain read is split
}

TEST(Router, ReadYourWritesHold) {
  const auto s = state(Phase::sync, 5000);
  ReadYourWrites ryw(std::make_shared<WindowOracle>(2000));
  ryw.record_write(kLowKey, {1000, 0});
  RouterInput in;
  in.state = &s;
  in.statement = SC::read_only;
  in.key = kLowKey;
  in.ryw = &ryw;
  in.now_ms = 1500;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::ryw_hold}));
  in.now_ms = 3000;
  EXPECT_EQ(decide(in), (RouteDecision{Side::target, Reason::split_target}));
  // A key whose split already says the authoritative side does not consult the tracker.
  ryw.record_write(kHighKey, {3000, 0});
  in.key = kHighKey;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::split_source}));
}

TEST(Router, ReasonNames) {
  EXPECT_EQ(to_string(Reason::target_unhealthy_fallback), "target_unhealthy_fallback");
  EXPECT_EQ(to_string(Reason::ryw_hold), "ryw_hold");
  EXPECT_EQ(to_string(Reason::target_lagging), "target_lagging");
  for (int i = 0; i <= static_cast<int>(Reason::target_lagging); ++i) {
    EXPECT_NE(to_string(static_cast<Reason>(i)), "invalid");
  }
  EXPECT_EQ(to_string(Side::target), "target");
  EXPECT_EQ(other(Side::target), Side::source);
}

TEST(Router, TargetLaggingFallsBackToTheSource) {
  const auto s = state(Phase::sync, 5000);
  RouterInput in;
  in.state = &s;
  in.statement = SC::read_only;
  in.key = kLowKey;
  in.target_lagging = true;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::target_lagging}));
  // Keys the split keeps on the source, and writes, are not affected.
  in.key = kHighKey;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::split_source}));
  in.key = kLowKey;
  in.statement = SC::write;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::authoritative_write}));
  // An unhealthy target is reported as such first.
  in.statement = SC::read_only;
  in.target_healthy = false;
  EXPECT_EQ(decide(in).reason, Reason::target_unhealthy_fallback);
  in.target_healthy = true;
  in.target_lagging = false;
  EXPECT_EQ(decide(in), (RouteDecision{Side::target, Reason::split_target}));
}

// ---- route table ---------------------------------------------------------------------

config::Route route(std::string name, std::string db, std::optional<std::string> user = {}) {
  config::Route r;
  r.name = std::move(name);
  r.client_database = std::move(db);
  r.client_user = std::move(user);
  return r;
}

TEST(RouteTable, ThreeServicesIntoOneInstance) {
  auto cfg = std::make_shared<config::Config>();
  cfg->routes.push_back(route("auth", "user_management_db"));
  cfg->routes.back().target = config::Upstream{};
  cfg->routes.back().target->database = "auth_db";
  cfg->routes.push_back(route("exercises", "exercises_db"));
  cfg->routes.back().target = config::Upstream{};
  cfg->routes.push_back(route("scores", "scores_db"));
  const RouteTable table(cfg);

  const config::Route* r = table.find("user_management_db", "app");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->name, "auth");
  EXPECT_EQ(upstream_database(*r->target, "user_management_db"), "auth_db");
  EXPECT_EQ(upstream_database(r->source, "user_management_db"), "user_management_db");
  r = table.find("exercises_db", "app");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(upstream_database(*r->target, "exercises_db"), "exercises_db");
  EXPECT_EQ(table.find("scores_db", "x")->name, "scores");

  EXPECT_EQ(table.find("nope", "app"), nullptr);
  EXPECT_EQ(table.find("USER_MANAGEMENT_DB", "app"), nullptr);  // exact, like the server
  EXPECT_EQ(database_not_found_message("nope"), "database \"nope\" does not exist");
  EXPECT_EQ(kSqlstateInvalidCatalogName, "3D000");
}

TEST(RouteTable, Precedence) {
  auto cfg = std::make_shared<config::Config>();
  cfg->routes.push_back(route("any", "*"));
  cfg->routes.push_back(route("any-admin", "*", "admin"));
  cfg->routes.push_back(route("db", "db"));
  cfg->routes.push_back(route("db-admin", "db", "admin"));
  cfg->routes.push_back(route("db-dup", "db"));  // loses the tie to "db"
  const RouteTable table(cfg);
  EXPECT_EQ(table.find("db", "admin")->name, "db-admin");
  EXPECT_EQ(table.find("db", "app")->name, "db");
  EXPECT_EQ(table.find("other", "admin")->name, "any-admin");
  EXPECT_EQ(table.find("other", "app")->name, "any");
}

TEST(RouteTable, UserOnlyRouteAndEmptyConfig) {
  auto cfg = std::make_shared<config::Config>();
  cfg->routes.push_back(route("reporting", "db", "reporter"));
  const RouteTable table(cfg);
  EXPECT_EQ(table.find("db", "reporter")->name, "reporting");
  EXPECT_EQ(table.find("db", "app"), nullptr);
  EXPECT_EQ(RouteTable(nullptr).find("db", "app"), nullptr);
}

}  // namespace
}  // namespace pgshift::routing
