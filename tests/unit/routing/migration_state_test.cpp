#include "routing/migration_state.hpp"

#include <gtest/gtest.h>

#include <set>
#include <utility>

#include "routing/state_json.hpp"

namespace pgshift::routing {
namespace {

constexpr Phase kAll[] = {Phase::source_only, Phase::sync, Phase::cutover, Phase::target_primary,
                          Phase::target_only};

MigrationState at(Phase p, Phase previous = Phase::source_only) {
  MigrationState s;
  s.phase = p;
  s.previous_phase = previous;
  return s;
}

TEST(MigrationState, PhaseNames) {
  for (Phase p : kAll) EXPECT_EQ(parse_phase(phase_name(p)), p);
  EXPECT_EQ(phase_name(Phase::target_primary), "target_primary");
  EXPECT_FALSE(parse_phase("SYNC"));
  EXPECT_FALSE(parse_phase(""));
}

TEST(MigrationState, AuthoritativeSide) {
  EXPECT_EQ(authoritative_side(at(Phase::source_only)), Side::source);
  EXPECT_EQ(authoritative_side(at(Phase::sync)), Side::source);
  EXPECT_EQ(authoritative_side(at(Phase::target_primary)), Side::target);
  EXPECT_EQ(authoritative_side(at(Phase::target_only)), Side::target);
  // cutover keeps the side of the phase it started from until it commits
  EXPECT_EQ(authoritative_side(at(Phase::cutover, Phase::sync)), Side::source);
  EXPECT_EQ(authoritative_side(at(Phase::cutover, Phase::target_primary)), Side::target);
}

TEST(MigrationState, TransitionTableIsExactlyTheDocumentedOne) {
  const std::set<std::pair<Phase, Phase>> want = {
      {Phase::source_only, Phase::sync},
      {Phase::sync, Phase::source_only},
      {Phase::sync, Phase::cutover},
      {Phase::cutover, Phase::target_primary},
      {Phase::cutover, Phase::sync},
      {Phase::target_primary, Phase::cutover},
      {Phase::target_primary, Phase::target_only},
      {Phase::target_only, Phase::target_primary},
  };
  std::set<std::pair<Phase, Phase>> got;
  for (const auto& t : phase_transitions()) got.insert({t.from, t.to});
  EXPECT_EQ(got, want);
  for (Phase from : kAll) {
    for (Phase to : kAll) {
      EXPECT_EQ(transition_allowed(from, to), want.contains({from, to}))
          << phase_name(from) << " -> " << phase_name(to);
    }
  }
}

TEST(MigrationState, ForwardAndRollbackPath) {
  MigrationState s;
  std::int64_t now = 1000;
  const Phase forward[] = {Phase::sync,           Phase::cutover,     Phase::target_primary,
                           Phase::cutover,        Phase::sync,        Phase::cutover,
                           Phase::target_primary, Phase::target_only, Phase::target_primary};
  std::uint64_t epoch = 0;
  for (Phase p : forward) {
    const Phase before = s.phase;
    auto r = apply(s, SetPhase{p}, ++now);
    ASSERT_TRUE(r) << r.message;
    EXPECT_EQ(r->phase, p);
    EXPECT_EQ(r->previous_phase, before);
    EXPECT_EQ(r->epoch, ++epoch);
    EXPECT_EQ(r->updated_at_ms, now);
    s = *r;
  }
}

TEST(MigrationState, InvalidTransitionsAreRefusedWithAMessage) {
  auto r = apply(at(Phase::source_only), SetPhase{Phase::target_primary}, 5);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error, make_error_code(errc::invalid_transition));
  EXPECT_EQ(r.message, "cannot change phase from source_only to target_primary");
  EXPECT_FALSE(apply(at(Phase::sync), SetPhase{Phase::target_only}, 5));
  EXPECT_FALSE(apply(at(Phase::target_only), SetPhase{Phase::source_only}, 5));
  EXPECT_FALSE(apply(at(Phase::source_only), SetPhase{Phase::cutover}, 5));
}

TEST(MigrationState, ReadPercentChangesBumpTheEpoch) {
  MigrationState s;
  s.epoch = 41;
  auto r = apply(s, SetReadPercent{1250}, 77);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->read_percent.basis_points(), 1250u);
  EXPECT_EQ(r->epoch, 42u);
  EXPECT_EQ(r->updated_at_ms, 77);
  EXPECT_EQ(r->phase, Phase::source_only);

  auto bad = apply(s, SetReadPercent{10001}, 78);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error, make_error_code(errc::invalid_read_percent));
  EXPECT_EQ(bad.message, "read percent must be between 0 and 100 (got 100.01)");
  EXPECT_TRUE(apply(s, SetReadPercent{10000}, 78));
  EXPECT_TRUE(apply(s, SetReadPercent{0}, 78));
}

TEST(MigrationState, NoOpChangesKeepTheEpoch) {
  MigrationState s = at(Phase::sync);
  s.epoch = 9;
  s.updated_at_ms = 5;
  s.read_percent = *ReadPercent::from_basis_points(300);
  EXPECT_EQ(*apply(s, SetReadPercent{300}, 100), s);
  EXPECT_EQ(*apply(s, SetPhase{Phase::sync}, 100), s);
}

TEST(MigrationState, ErrorCategory) {
  EXPECT_STREQ(routing_category().name(), "pgshift.routing");
  EXPECT_EQ(make_error_code(errc::bad_json).message(), "bad JSON");
}

// ---- JSON ------------------------------------------------------------------------------

MigrationState sample() {
  MigrationState s;
  s.phase = Phase::cutover;
  s.previous_phase = Phase::sync;
  s.read_percent = *ReadPercent::from_basis_points(1250);
  s.epoch = 7;
  s.updated_at_ms = 1700000000123;
  return s;
}

TEST(StateJson, RoundTrip) {
  StateFile f;
  f.routes["auth"] = sample();
  f.routes["scores"] = MigrationState{};
  MigrationState whole;
  whole.read_percent = *ReadPercent::from_basis_points(5000);
  f.routes["exercises"] = whole;
  const std::string text = serialize_state_file(f);
  EXPECT_EQ(text.back(), '\n');
  const auto back = parse_state_file(text);
  ASSERT_TRUE(back) << back.message;
  EXPECT_EQ(*back, f);
}

TEST(StateJson, Shape) {
  const boost::json::object o = to_json(sample());
  EXPECT_EQ(o.at("phase").as_string(), "cutover");
  EXPECT_EQ(o.at("previous_phase").as_string(), "sync");
  EXPECT_EQ(o.at("read_percent_bp").to_number<std::int64_t>(), 1250);
  EXPECT_DOUBLE_EQ(o.at("read_percent").as_double(), 12.5);
  EXPECT_EQ(o.at("epoch").to_number<std::int64_t>(), 7);
  EXPECT_EQ(o.at("updated_at_ms").as_int64(), 1700000000123);
  MigrationState half;
  half.read_percent = *ReadPercent::from_basis_points(5000);
  EXPECT_EQ(to_json(half).at("read_percent").as_int64(), 50);  // whole percents stay integers
  const auto file = to_json(StateFile{});
  EXPECT_EQ(file.at("version").as_int64(), kStateFileVersion);
  EXPECT_TRUE(file.at("routes").is_object());
}

TEST(StateJson, MinimalAndTolerantInput) {
  auto f = parse_state_file(
      R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":"33.3","epoch":3,
          "future_field":{"x":1}}}})");
  ASSERT_TRUE(f) << f.message;
  const MigrationState& a = f->routes.at("a");
  EXPECT_EQ(a.phase, Phase::sync);
  EXPECT_EQ(a.previous_phase, Phase::sync);
  EXPECT_EQ(a.read_percent.basis_points(), 3330u);
  EXPECT_EQ(a.epoch, 3u);
  EXPECT_EQ(a.updated_at_ms, 0);
  f = parse_state_file(R"({"version":1,"routes":{"a":{"phase":"sync","read_percent_bp":5,
                          "epoch":3.0}}})");
  ASSERT_TRUE(f) << f.message;
  EXPECT_EQ(f->routes.at("a").read_percent.basis_points(), 5u);
  f = parse_state_file(R"({"version":1,"routes":{}})");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->routes.empty());
}

struct BadCase {
  std::string_view text;
  errc error;
  std::string_view message;
};

TEST(StateJson, BadInputsGiveClearErrors) {
  const BadCase cases[] = {
      {"", errc::bad_json, "state file: not valid JSON"},
      {"{", errc::bad_json, "state file: not valid JSON"},
      {"[]", errc::bad_json, "state file: must be a JSON object"},
      {R"({"routes":{}})", errc::bad_json, "state file: missing \"version\""},
      {R"({"version":"1","routes":{}})", errc::bad_json, "version: must be a positive integer"},
      {R"({"version":2,"routes":{}})", errc::unsupported_version,
       "version: state file version 2 was written by a newer pgshift"},
      {R"({"version":1})", errc::bad_json, "state file: missing \"routes\""},
      {R"({"version":1,"routes":[]})", errc::bad_json, "routes: must be an object"},
      {R"({"version":1,"routes":{"a":1}})", errc::bad_json, "routes.a: must be an object"},
      {R"({"version":1,"routes":{"a":{"read_percent":1,"epoch":1}}})", errc::bad_json,
       "routes.a: missing \"phase\""},
      {R"({"version":1,"routes":{"a":{"phase":"done","read_percent":1,"epoch":1}}})",
       errc::unknown_phase, "routes.a.phase: unknown phase \"done\""},
      {R"({"version":1,"routes":{"a":{"phase":3,"read_percent":1,"epoch":1}}})", errc::bad_json,
       "routes.a.phase: must be a string"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","epoch":1}}})", errc::bad_json,
       "routes.a: missing \"read_percent\""},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":101,"epoch":1}}})",
       errc::invalid_read_percent,
       "routes.a.read_percent: must be a number between 0 and 100 with at most two decimals "
       "(got 101)"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":12.345,"epoch":1}}})",
       errc::invalid_read_percent, "routes.a.read_percent: must be a number between 0 and 100"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":-1,"epoch":1}}})",
       errc::invalid_read_percent, "routes.a.read_percent: must be a number"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":true,"epoch":1}}})",
       errc::invalid_read_percent, "routes.a.read_percent: must be a number"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent_bp":10001,"epoch":1}}})",
       errc::invalid_read_percent,
       "routes.a.read_percent_bp: must be an integer between 0 and 10000"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":1,
          "read_percent_bp":200,"epoch":1}}})",
       errc::invalid_read_percent, "routes.a: read_percent and read_percent_bp disagree"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":1}}})", errc::bad_json,
       "routes.a: missing \"epoch\""},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":1,"epoch":-1}}})",
       errc::bad_json, "routes.a.epoch: must be a non-negative integer"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":1,"epoch":1.5}}})",
       errc::bad_json, "routes.a.epoch: must be a non-negative integer"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":1,"epoch":1,
          "updated_at_ms":"x"}}})",
       errc::bad_json, "routes.a.updated_at_ms: must be an integer"},
      {R"({"version":1,"routes":{"a":{"phase":"sync","read_percent":1,"epoch":1,
          "previous_phase":"nope"}}})",
       errc::unknown_phase, "routes.a.previous_phase: unknown phase \"nope\""},
  };
  for (const auto& c : cases) {
    const auto r = parse_state_file(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error, make_error_code(c.error)) << c.text << " -> " << r.message;
    EXPECT_TRUE(r.message.starts_with(c.message)) << c.text << "\n  got: " << r.message;
  }
}

TEST(StateJson, ReadPercentFromJson) {
  EXPECT_EQ(read_percent_from_json(boost::json::value(12.5), "p")->basis_points(), 1250u);
  EXPECT_EQ(read_percent_from_json(boost::json::value(100), "p")->basis_points(), 10000u);
  EXPECT_EQ(read_percent_from_json(boost::json::value(0u), "p")->basis_points(), 0u);
  EXPECT_EQ(read_percent_from_json(boost::json::value("7.25"), "p")->basis_points(), 725u);
  auto r = read_percent_from_json(boost::json::value(150), "p");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error, make_error_code(errc::invalid_read_percent));
  EXPECT_EQ(r.message, "p: must be a number between 0 and 100 with at most two decimals (got 150)");
  r = read_percent_from_json(boost::json::value(std::string(500, 'x')), "p");
  ASSERT_FALSE(r);
  EXPECT_LT(r.message.size(), 200u);  // bad values are echoed, but cut short
  EXPECT_FALSE(read_percent_from_json(boost::json::value(nullptr), "p"));
  EXPECT_FALSE(read_percent_from_json(boost::json::value(-1), "p"));
}

}  // namespace
}  // namespace pgshift::routing
