// RouteStateStore: defaults, persistence round trip, atomic writes, corrupt files, reloads.
#include "proxy/control/route_state_store.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "proxy/telemetry/metrics.hpp"
#include "routing/state_json.hpp"
#include "tests/support/files.hpp"
#include "tests/support/temp_dir.hpp"

namespace pgshift::proxy {
namespace {

using pgshift::test::read_file;
using pgshift::test::TempDir;
using pgshift::test::write_file;
using routing::SetPhase;
using routing::SetReadPercent;

// A file name in `dir`, as the store takes it.
std::string file_in(const TempDir& dir, const char* name) {
  return (dir / name).string();
}

config::Config make_config(std::initializer_list<std::pair<const char*, double>> routes) {
  config::Config cfg;
  for (const auto& [name, initial] : routes) {
    config::Route r;
    r.name = name;
    r.client_database = name;
    r.source.host = "127.0.0.1";
    r.read_split.initial_read_percent = initial;
    cfg.routes.push_back(r);
  }
  return cfg;
}

RouteStateStore::Clock fixed_clock(std::int64_t ms) {
  return [ms]() { return ms; };
}

TEST(RouteStateStore, MissingFileGivesConfiguredDefaults) {
  TempDir dir;
  RouteStateStore store(file_in(dir, "state.json"), fixed_clock(1000));
  store.load(make_config({{"auth", 12.5}, {"scores", 0}}));
  auto snap = store.snapshot();
  ASSERT_EQ(snap->routes.size(), 2u);
  const auto* auth = snap->find("auth");
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->phase, config::Phase::source_only);
  EXPECT_EQ(auth->read_percent.basis_points(), 1250u);
  EXPECT_EQ(auth->epoch, 0u);
  EXPECT_EQ(snap->find("scores")->read_percent.basis_points(), 0u);
  // Loading alone writes nothing: the file appears with the first change.
  EXPECT_FALSE(std::filesystem::exists(file_in(dir, "state.json")));
}

TEST(RouteStateStore, ChangesArePersistedAndSurviveARestart) {
  TempDir dir;
  const auto path = file_in(dir, "state.json");
  const auto cfg = make_config({{"auth", 0}, {"scores", 0}});
  {
    RouteStateStore store(path, fixed_clock(1700000000123));
    store.load(cfg);
    auto r = store.apply("auth", SetReadPercent{1250});
    ASSERT_TRUE(r.ok()) << r.message;
    EXPECT_TRUE(r.changed());
    EXPECT_EQ(r.before.epoch, 0u);
    EXPECT_EQ(r.after.epoch, 1u);
    EXPECT_EQ(r.after.updated_at_ms, 1700000000123);
    ASSERT_TRUE(store.apply("auth", SetPhase{config::Phase::sync}).ok());
    EXPECT_EQ(store.snapshot()->find("auth")->epoch, 2u);
  }
  // What is on disk is exactly what was published.
  auto parsed = routing::parse_state_file(read_file(path));
  ASSERT_TRUE(parsed) << parsed.message;
  EXPECT_EQ(parsed->routes.at("auth").read_percent.basis_points(), 1250u);

  RouteStateStore reopened(path, fixed_clock(0));
  reopened.load(cfg);
  const auto* auth = reopened.snapshot()->find("auth");
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->read_percent.basis_points(), 1250u);
  EXPECT_EQ(auth->phase, config::Phase::sync);
  EXPECT_EQ(auth->previous_phase, config::Phase::source_only);
  EXPECT_EQ(auth->epoch, 2u);
  EXPECT_EQ(auth->updated_at_ms, 1700000000123);
  EXPECT_EQ(reopened.snapshot()->find("scores")->epoch, 0u);
}

TEST(RouteStateStore, SnapshotsAreImmutable) {
  RouteStateStore store("", fixed_clock(1));
  store.load(make_config({{"auth", 0}}));
  auto before = store.snapshot();
  ASSERT_TRUE(store.apply("auth", SetReadPercent{5000}).ok());
  EXPECT_EQ(before->find("auth")->read_percent.basis_points(), 0u);
  EXPECT_EQ(store.snapshot()->find("auth")->read_percent.basis_points(), 5000u);
}

TEST(RouteStateStore, SameValueIsANoOp) {
  TempDir dir;
  RouteStateStore store(file_in(dir, "state.json"), fixed_clock(1));
  store.load(make_config({{"auth", 10}}));
  auto r = store.apply("auth", SetReadPercent{1000});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.changed());
  EXPECT_EQ(store.snapshot()->find("auth")->epoch, 0u);
  EXPECT_FALSE(std::filesystem::exists(file_in(dir, "state.json")));
}

TEST(RouteStateStore, RejectsUnknownRoutesAndInvalidChanges) {
  RouteStateStore store("", fixed_clock(1));
  store.load(make_config({{"auth", 0}}));
  auto unknown = store.apply("nope", SetReadPercent{100});
  EXPECT_EQ(unknown.error, StateChangeError::unknown_route);
  EXPECT_NE(unknown.message.find("nope"), std::string::npos);
  auto too_big = store.apply("auth", SetReadPercent{10001});
  EXPECT_EQ(too_big.error, StateChangeError::invalid);
  EXPECT_FALSE(too_big.message.empty());
  auto bad_phase = store.apply("auth", SetPhase{config::Phase::target_only});
  EXPECT_EQ(bad_phase.error, StateChangeError::invalid);
  EXPECT_EQ(store.snapshot()->find("auth")->epoch, 0u);
}

TEST(RouteStateStore, AtomicWriteLeavesNoTemporaryFiles) {
  TempDir dir;
  const auto path = file_in(dir, "state.json");
  RouteStateStore store(path, fixed_clock(1));
  store.load(make_config({{"auth", 0}}));
  for (std::uint32_t bp = 1; bp <= 20; ++bp)
    ASSERT_TRUE(store.apply("auth", SetReadPercent{bp}).ok());
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(e.path().filename().string());
  }
  EXPECT_EQ(names, std::vector<std::string>{"state.json"});
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  EXPECT_TRUE(routing::parse_state_file(read_file(path)));
}

TEST(RouteStateStore, WriteFileAtomicallyReplacesAndReportsErrors) {
  TempDir dir;
  const auto path = file_in(dir, "f.json");
  write_file(path, "old");
  EXPECT_EQ(write_file_atomically(path, "new contents"), "");
  EXPECT_EQ(read_file(path), "new contents");
  const auto err = write_file_atomically(file_in(dir, "missing-dir/f.json"), "x");
  EXPECT_NE(err.find("cannot create"), std::string::npos) << err;
}

TEST(RouteStateStore, FailedPersistChangesNothing) {
  TempDir dir;
  RouteStateStore store(file_in(dir, "no-such-dir/state.json"), fixed_clock(1));
  store.load(make_config({{"auth", 0}}));
  const double failures = metrics().errors(ErrorKind::state_persist).Value();
  auto r = store.apply("auth", SetReadPercent{500});
  EXPECT_EQ(r.error, StateChangeError::persist_failed);
  EXPECT_EQ(metrics().errors(ErrorKind::state_persist).Value(), failures + 1);
  EXPECT_NE(r.message.find("could not save the state file"), std::string::npos) << r.message;
  EXPECT_EQ(store.snapshot()->find("auth")->read_percent.basis_points(), 0u);
  EXPECT_EQ(store.snapshot()->find("auth")->epoch, 0u);
}

TEST(RouteStateStore, CorruptFileIsAClearStartupError) {
  TempDir dir;
  const auto path = file_in(dir, "state.json");
  for (const std::string text :
       {"{not json", R"({"version": 1})", R"([1, 2])", R"({"version": 99, "routes": {}})",
        R"({"version": 1, "routes": {"auth": {"phase": "nope",
                                     "read_percent": 1, "epoch": 1}}})"}) {
    write_file(path, text);
    RouteStateStore store(path, fixed_clock(1));
    try {
      store.load(make_config({{"auth", 0}}));
      ADD_FAILURE() << "accepted: " << text;
    } catch (const StateFileError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(path), std::string::npos) << what;
      EXPECT_NE(what.find("not usable"), std::string::npos) << what;
    }
    EXPECT_EQ(read_file(path), text) << "a corrupt file must be left for the operator";
  }
}

TEST(RouteStateStore, RoutesNotInConfigAreNotServedAndNewOnesGetDefaults) {
  TempDir dir;
  const auto path = file_in(dir, "state.json");
  {
    RouteStateStore store(path, fixed_clock(1));
    store.load(make_config({{"auth", 0}, {"old", 0}}));
    ASSERT_TRUE(store.apply("old", SetReadPercent{100}).ok());
    ASSERT_TRUE(store.apply("auth", SetReadPercent{200}).ok());
  }
  RouteStateStore store(path, fixed_clock(1));
  store.load(make_config({{"auth", 0}, {"new", 7.5}}));
  auto snap = store.snapshot();
  EXPECT_EQ(snap->find("old"), nullptr);
  EXPECT_EQ(snap->find("auth")->read_percent.basis_points(), 200u);
  EXPECT_EQ(snap->find("new")->read_percent.basis_points(), 750u);

  store.reconcile(make_config({{"new", 0}, {"third", 1}}));
  snap = store.snapshot();
  EXPECT_EQ(snap->find("auth"), nullptr);
  EXPECT_EQ(snap->find("new")->read_percent.basis_points(), 750u);  // kept, not reset
  EXPECT_EQ(snap->find("third")->read_percent.basis_points(), 100u);
}

// Issue 16.4: a route removed by a reload keeps its state (in memory and in the file, through
// later changes of other routes and a restart) and resumes from it when it comes back.
TEST(RouteStateStore, RemovedRouteIsRetiredAndResumesWhenRestored) {
  TempDir dir;
  const auto path = file_in(dir, "state.json");
  RouteStateStore store(path, fixed_clock(1));
  store.load(make_config({{"auth", 0}, {"old", 0}}));
  ASSERT_TRUE(store.apply("old", SetReadPercent{100}).ok());
  ASSERT_TRUE(store.apply("old", SetReadPercent{5000}).ok());  // epoch 2

  store.reconcile(make_config({{"auth", 0}}));
  EXPECT_EQ(store.snapshot()->find("old"), nullptr);
  EXPECT_FALSE(store.apply("old", SetReadPercent{0}).ok()) << "a retired route is not served";
  ASSERT_TRUE(store.apply("auth", SetReadPercent{200}).ok());  // rewrites the file
  {
    RouteStateStore restarted(path, fixed_clock(1));
    restarted.load(make_config({{"auth", 0}, {"old", 0}}));
    ASSERT_NE(restarted.snapshot()->find("old"), nullptr);
    EXPECT_EQ(restarted.snapshot()->find("old")->epoch, 2u) << "the file kept the retired route";
  }

  store.reconcile(make_config({{"auth", 0}, {"old", 0}}));
  const auto* old = store.snapshot()->find("old");
  ASSERT_NE(old, nullptr);
  EXPECT_EQ(old->epoch, 2u);
  EXPECT_EQ(old->read_percent.basis_points(), 5000u);
  auto next = store.apply("old", SetReadPercent{6000});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next.after.epoch, 3u) << "the epoch continues, never from 0";
}

TEST(RouteStateStore, ListenersSeeEveryChangeInOrder) {
  RouteStateStore store("", fixed_clock(1));
  store.load(make_config({{"auth", 0}}));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> seen;
  const auto id = store.subscribe([&](const std::string& route, const routing::MigrationState& b,
                                      const routing::MigrationState& a) {
    EXPECT_EQ(route, "auth");
    seen.emplace_back(b.epoch, a.epoch);
  });
  ASSERT_TRUE(store.apply("auth", SetReadPercent{1}).ok());
  ASSERT_TRUE(store.apply("auth", SetReadPercent{1}).ok());  // no change, no call
  ASSERT_TRUE(store.apply("auth", SetReadPercent{2}).ok());
  store.unsubscribe(id);
  ASSERT_TRUE(store.apply("auth", SetReadPercent{3}).ok());
  EXPECT_EQ(seen, (std::vector<std::pair<std::uint64_t, std::uint64_t>>{{0, 1}, {1, 2}}));
}

TEST(RouteStateStore, ConcurrentChangesAreSerialized) {
  TempDir dir;
  RouteStateStore store(file_in(dir, "state.json"), fixed_clock(1));
  store.load(make_config({{"auth", 0}}));
  constexpr int kThreads = 4, kPerThread = 25;
  std::atomic<bool> ordered{true};
  std::uint64_t last_epoch = 0;  // written under the store's lock (listeners are serialized)
  store.subscribe(
      [&](const std::string&, const routing::MigrationState& b, const routing::MigrationState& a) {
        if (a.epoch != b.epoch + 1 || a.epoch != last_epoch + 1) ordered = false;
        last_epoch = a.epoch;
      });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t]() {
      for (int k = 0; k < kPerThread; ++k) {
        // Unique values, so every call is a real change.
        store.apply("auth", SetReadPercent{static_cast<std::uint32_t>(t * 1000 + k + 1)});
        (void)store.snapshot()->find("auth")->epoch;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(ordered);
  EXPECT_EQ(store.snapshot()->find("auth")->epoch, std::uint64_t{kThreads * kPerThread});
  RouteStateStore reopened(file_in(dir, "state.json"), fixed_clock(1));
  reopened.load(make_config({{"auth", 0}}));
  EXPECT_EQ(reopened.snapshot()->find("auth")->epoch, std::uint64_t{kThreads * kPerThread});
}

}  // namespace
}  // namespace pgshift::proxy
