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
  std::optional<Side> transaction_side = std::nullopt;
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
       {Side::target, Reason::split_target, false}},
      {"read, high bucket -> source", sync50, SC::read_only, kHighKey,
       {Side::source, Reason::split_source, false}},
      {"read at 0 % -> source", state(Phase::sync, 0), SC::read_only, kLowKey,
       {Side::source, Reason::split_source, false}},
      {"read at 100 % -> target", state(Phase::sync, 10000), SC::read_only, kHighKey,
       {Side::target, Reason::split_target, false}},
      {"source_only phase splits too", state(Phase::source_only, 5000), SC::read_only, kLowKey,
       {Side::target, Reason::split_target, false}},
      {"write -> source", sync50, SC::write, kLowKey,
       {Side::source, Reason::authoritative_write, false}},
      {"ddl -> source", sync50, SC::ddl, kLowKey,
       {Side::source, Reason::authoritative_write, false}},
      {"plain BEGIN -> source", sync50, SC::transaction_begin, kLowKey,
       {Side::source, Reason::authoritative_statement, false}},
      {"BEGIN READ ONLY -> split", sync50, SC::transaction_begin_read_only, kLowKey,
       {Side::target, Reason::split_target, false}},
      {"session state -> source", sync50, SC::session_state, kLowKey,
       {Side::source, Reason::authoritative_statement, false}},
      {"set_local outside a transaction -> source", sync50, SC::set_local, kLowKey,
       {Side::source, Reason::authoritative_statement, false}},
      {"other -> source", sync50, SC::other, kLowKey,
       {Side::source, Reason::authoritative_statement, false}},
      {"empty -> authoritative", sync50, SC::empty, kLowKey,
       {Side::source, Reason::empty_query, false}},
      {"target unhealthy -> fallback", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::target_unhealthy_fallback, false}, false},
      {"target unhealthy, high bucket: plain split", sync50, SC::read_only, kHighKey,
       {Side::source, Reason::split_source, false}, false},
      {"in transaction on source", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::in_transaction, false}, true, Side::source},
      {"write in transaction on source", sync50, SC::write, kLowKey,
       {Side::source, Reason::in_transaction, false}, true, Side::source},
      {"read in read-only transaction on target", sync50, SC::read_only, kHighKey,
       {Side::target, Reason::in_transaction, false}, true, Side::target},
      {"COMMIT of read-only transaction on target", sync50, SC::transaction_end, kHighKey,
       {Side::target, Reason::in_transaction, false}, true, Side::target},
      {"savepoint in read-only transaction on target", sync50, SC::savepoint, kHighKey,
       {Side::target, Reason::in_transaction, false}, true, Side::target},
      {"FETCH in read-only transaction on target", sync50, SC::other, kLowKey,
       {Side::target, Reason::in_transaction, false}, true, Side::target},
      {"SET LOCAL in read-only transaction on target", sync50, SC::set_local, kLowKey,
       {Side::target, Reason::in_transaction, false}, true, Side::target},
      {"redundant BEGIN in read-only transaction on target", sync50, SC::transaction_begin,
       kLowKey, {Side::target, Reason::in_transaction, false}, true, Side::target},
      {"write in read-only transaction on target: rejected", sync50, SC::write, kLowKey,
       {Side::target, Reason::read_only_transaction_write, true}, true, Side::target},
      {"DDL in read-only transaction on target: rejected", sync50, SC::ddl, kLowKey,
       {Side::target, Reason::read_only_transaction_write, true}, true, Side::target},
      {"SET in read-only transaction on target: rejected", sync50, SC::session_state, kLowKey,
       {Side::target, Reason::read_only_transaction_write, true}, true, Side::target},
      {"pinned session reads -> source", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::session_pinned, false}, true, std::nullopt, true},
      {"no target configured", sync50, SC::read_only, kLowKey,
       {Side::source, Reason::no_target, false}, true, std::nullopt, false, false},
      {"cutover holds reads on the old side", state(Phase::cutover, 5000, Phase::sync),
       SC::read_only, kLowKey, {Side::source, Reason::cutover_in_progress, false}},
      {"rollback cutover: target still authoritative",
       state(Phase::cutover, 5000, Phase::target_primary), SC::write, kLowKey,
       {Side::target, Reason::authoritative_write, false}},
      {"target_primary: writes -> target", tp50, SC::write, kHighKey,
       {Side::target, Reason::authoritative_write, false}},
      {"target_primary: low bucket reads target", tp50, SC::read_only, kLowKey,
       {Side::target, Reason::split_target, false}},
      {"target_primary: high bucket reads source", tp50, SC::read_only, kHighKey,
       {Side::source, Reason::split_source, false}},
      {"target_primary: source unhealthy", tp50, SC::read_only, kHighKey,
       {Side::target, Reason::source_unhealthy_fallback, false}, true, std::nullopt, false,
       true, false},
      {"target_primary: target unhealthy still gets writes", tp50, SC::write, kHighKey,
       {Side::target, Reason::authoritative_write, false}, false},
      {"target_only: everything -> target", state(Phase::target_only, 0, Phase::target_primary),
       SC::write, kHighKey, {Side::target, Reason::target_only, false}},
      {"target_only: reads -> target", state(Phase::target_only, 0, Phase::target_primary),
       SC::read_only, kHighKey, {Side::target, Reason::target_only, false}},
  };
  // clang-format on
  for (const auto& c : cases) {
    RouterInput in;
    in.state = &c.state;
    in.statement = c.statement;
    in.key = c.key;
    in.target_healthy = c.target_healthy;
    in.source_healthy = c.source_healthy;
    in.transaction_side = c.transaction_side;
    in.session_pinned = c.session_pinned;
    in.has_target = c.has_target;
    const RouteDecision got = decide(in);
    EXPECT_EQ(got, c.want) << c.name << ": got " << to_string(got.side) << "/"
                           << to_string(got.reason) << (got.reject ? " reject" : "");
  }
}

TEST(Router, UnknownFunctionsInsideAReadOnlyTransaction) {
  const auto s = state(Phase::sync, 5000);
  const Classifier classifier;
  RouterInput in;
  in.state = &s;
  in.key = kLowKey;
  in.transaction_side = Side::target;
  struct Row {
    std::string_view sql;
    bool reject;
  };
  const Row rows[] = {
      {"SELECT my_report(42)", false},  // the server refuses any write it attempts
      {"SELECT my_report(42); SELECT 1", false},
      {"EXPLAIN ANALYZE SELECT my_report(42)", false},
      {"SELECT my_report(42) FROM t FOR UPDATE", true},
      {"SELECT my_report(42), nextval('s')", true},
      {"SELECT pg_advisory_lock(1)", true},
      {"INSERT INTO t SELECT my_report(1)", true},
      {"SET transaction_read_only = off", true},
      {"COPY (SELECT f()) TO STDOUT", false},
      {"COPY (SELECT f()) TO '/tmp/x'", true},
      {"SELECT f(); DELETE FROM t", true},
      {"SELECT f() INTO TEMP x", true},
  };
  for (const auto& r : rows) {
    const Classification c = classifier.classify(r.sql);
    in.statement = c.kind;
    in.only_unknown_functions = c.only_unknown_functions;
    EXPECT_EQ(decide(in).reject, r.reject) << r.sql;
    // outside a transaction none of them is a split candidate
    RouterInput out = in;
    out.transaction_side.reset();
    EXPECT_EQ(decide(out).side, Side::source) << r.sql;
  }
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
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::ryw_hold, false}));
  in.now_ms = 3000;
  EXPECT_EQ(decide(in), (RouteDecision{Side::target, Reason::split_target, false}));
  // A key whose split already says the authoritative side does not consult the tracker.
  ryw.record_write(kHighKey, {3000, 0});
  in.key = kHighKey;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::split_source, false}));
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
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::target_lagging, false}));
  // Keys the split keeps on the source, and writes, are not affected.
  in.key = kHighKey;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::split_source, false}));
  in.key = kLowKey;
  in.statement = SC::write;
  EXPECT_EQ(decide(in), (RouteDecision{Side::source, Reason::authoritative_write, false}));
  // An unhealthy target is reported as such first.
  in.statement = SC::read_only;
  in.target_healthy = false;
  EXPECT_EQ(decide(in).reason, Reason::target_unhealthy_fallback);
  in.target_healthy = true;
  in.target_lagging = false;
  EXPECT_EQ(decide(in), (RouteDecision{Side::target, Reason::split_target, false}));
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
