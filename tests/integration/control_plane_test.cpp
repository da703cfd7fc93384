// The fleet control plane (issue 10, docs/control-plane.md) end to end: several pgshift
// processes sharing one control database, changes through one applied by all, compare-and-
// set, an outage of the control database, the fleet barrier (commit, a stopped member, a dead
// coordinator), the schema raced by five sidecars, and the audit trail.
//
// Clusters (started once): source and target of split_routing_support (marker tables), and a
// separate "control" cluster for the outage and schema-race tests. Each test uses its own
// route name, so the rows it reads in pgshift.routes are its own.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <future>
#include <thread>

#include "proxy/control/fleets.hpp"
#include "proxy/pgclient/connection.hpp"
#include "tests/integration/split_routing_support.hpp"
#include "tests/support/metrics.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

struct ControlServer {
  PgCluster control{{.name = "control"}};
  ControlServer() { control.create_role("ctl", "ctl-pw"); }
};
const auto* const control_env = SharedEnvironment<ControlServer>::install();
PgCluster& control_cluster() {
  return SharedEnvironment<ControlServer>::get().control;
}

// A pgshift of the fleet serving `route` (client database postgres, source and target of
// split_servers as app). `control` is the YAML of the control key: "{poll_ms: 250}" = the
// target's database (the default) with a fast poll.
PgshiftOptions member(const std::string& route, const std::string& pod,
                      const std::string& control = "{poll_ms: 250}", bool wait_ready = true) {
  ConfigSpec spec;
  spec.control = control;
  RouteSpec r{.name = route,
              .client_database = "postgres",
              .source = upstream_of(split_servers().source, "app", "postgres"),
              .target = upstream_of(split_servers().target, "app", "postgres")};
  r.extra_yaml = "read_split:\n  read_your_writes_window_ms: 0\n";
  spec.routes.push_back(r);
  return {.config_yaml = spec.to_yaml(),
          .users = users_file_text({{"app", "app-pw"}}),
          .env = {{"POD_NAME", pod}},
          .wait_ready = wait_ready};
}

json::value get_json(const PgshiftProcess& p, const std::string& path) {
  const HttpResponse r = admin_request(p, "GET", path);
  if (r.status != 200) return nullptr;
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  return ec ? json::value(nullptr) : v;
}

std::int64_t int_member(const json::value& v, std::string_view key) {
  const auto* m = v.is_object() ? v.as_object().if_contains(key) : nullptr;
  return m && m->is_number() ? m->to_number<std::int64_t>() : -1;
}

json::value route_of(const PgshiftProcess& p, const std::string& route) {
  return get_json(p, "/v1/routes/" + route);
}
std::int64_t epoch_of(const PgshiftProcess& p, const std::string& route) {
  return int_member(route_of(p, route), "epoch");
}

HttpResponse put_percent(const PgshiftProcess& p, const std::string& route,
                         const std::string& body) {
  return admin_request(p, "PUT", "/v1/routes/" + route + "/read-percent", body);
}

// Every member has applied `epoch` of `route` and sees all `n` of them at it.
bool converged(const std::vector<PgshiftProcess*>& fleet, const std::string& route,
               std::int64_t epoch, int n) {
  for (auto* p : fleet) {
    const auto v = route_of(*p, route);
    if (int_member(v, "epoch") != epoch || int_member(v, "members_at_epoch") != n) return false;
  }
  return true;
}

// The health checker has seen the route's target working (until then split reads fall back
// to the source).
bool healthy(const PgshiftProcess& p, const std::string& route) {
  return wait_until(
      [&] {
        const auto v = route_of(p, route);
        const auto* t = v.is_object() ? v.as_object().if_contains("target") : nullptr;
        if (!t || !t->is_object()) return false;
        const auto* h = t->as_object().if_contains("health");
        if (!h || !h->is_object()) return false;
        const auto* st = h->as_object().if_contains("status");
        return st && st->is_string() && st->as_string() == "healthy";
      },
      10s, "the health checker to report the target healthy");
}

double gauge(const PgshiftProcess& p, const std::string& name) {
  return metric_value(fetch_metrics(p), name).value_or(-1);
}

std::string scalar(PgCluster& cluster, const std::string& sql) {
  return cluster.exec(sql).scalar();
}

// `pgshift ctl <args>` against p's admin API; stdout (a failure is a test failure).
std::string ctl(const PgshiftProcess& p, std::vector<std::string> args) {
  const CommandResult r = run_ctl(p, std::move(args), 20s);
  EXPECT_TRUE(r.success()) << r.describe();
  return r.out;
}

// A coordinator in this test process, against the target's database (control: target).
control::PgFleet coordinator() {
  control::PgFleet::Options o;
  o.conn.host = split_servers().target.host();
  o.conn.port = split_servers().target.port();
  o.conn.dbname = "postgres";
  o.conn.user = "app";
  o.conn.password = "app-pw";
  o.poll = 250ms;
  return control::PgFleet(o);
}

control::HoldRequest hold_request(const std::string& route, std::chrono::milliseconds deadline) {
  return {.route = route,
          .kind = "test",
          .actor = "cli@control_plane_test",
          .drain_timeout = 1500ms,
          .deadline = deadline};
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    split_servers().reset();
    // control: target logs in as the route's target user: it creates schema pgshift.
    split_servers().target.exec("GRANT CREATE ON DATABASE postgres TO app");
  }
};

// PUT read-percent 30 through the first of three sidecars is applied by all three, each one's
// reads follow it, and pgbench through all three sees no failed transaction.
TEST_F(ControlPlaneTest, ThreeSidecarsApplyOneChangeUnderPgbench) {
  const std::string route = "fleet_apply";
  PgshiftProcess a(member(route, "member-a"));
  PgshiftProcess b(member(route, "member-b"));
  PgshiftProcess c(member(route, "member-c"));
  std::vector<PgshiftProcess*> fleet{&a, &b, &c};
  for (auto* p : fleet) ASSERT_TRUE(healthy(*p, route)) << p->log();
  const std::int64_t e0 = epoch_of(a, route);
  ASSERT_TRUE(wait_until([&] { return converged(fleet, route, e0, 3); }, 10s,
                         "three members at the starting epoch"));

  TempDir dir("pgshift-control-pgbench");
  write_file(dir / "mix.sql",
             "\\set uid random(1, 100000)\n"
             "SELECT side FROM marker /* user_id=':uid' */;\n"
             "INSERT INTO events (k, n) VALUES ('bench', 1);\n");
  std::vector<std::unique_ptr<Process>> benches;
  for (auto* p : fleet) {
    benches.push_back(std::make_unique<Process>(ProcessOptions{
        .argv = {pg_tool("pgbench").string(), "-n", "-M", "simple", "-c", "2", "-j", "1", "-T", "6",
                 "-f", (dir / "mix.sql").string(), client_conninfo(*p)},
        .unset_env = libpq_environment_variables(),
        .merge_output = true}));
  }

  const HttpResponse r = put_percent(a, route, R"({"percent": 30})");
  ASSERT_EQ(r.status, 200) << r.describe();
  ASSERT_TRUE(wait_until([&] { return converged(fleet, route, e0 + 1, 3); }, 10s,
                         "every member applying the new epoch"));

  // 10,000 keys over the three sidecars: each read lands where the split formula says.
  int on_target = 0, wrong = 0;
  const int keys = 10000;
  std::vector<std::unique_ptr<PgConnection>> conns;
  for (auto* p : fleet) conns.push_back(std::make_unique<PgConnection>(client_conninfo(*p)));
  for (int i = 0; i < keys; ++i) {
    const std::string key = "k" + std::to_string(i);
    const std::string side = side_of(*conns[static_cast<std::size_t>(i % 3)], key);
    on_target += side == "target" ? 1 : 0;
    wrong += side != expected_side(key, 3000) ? 1 : 0;
  }
  EXPECT_EQ(wrong, 0) << "reads not where the formula sends them at 30 %";
  EXPECT_NEAR(on_target * 100.0 / keys, 30.0, 2.0);

  // The operator's view of the fleet.
  const std::string fleet_status = ctl(b, {"status"});
  EXPECT_NE(fleet_status.find(route), std::string::npos) << fleet_status;
  EXPECT_NE(fleet_status.find("30.00"), std::string::npos) << fleet_status;
  EXPECT_NE(fleet_status.find("3/3"), std::string::npos) << fleet_status;
  const std::string members = ctl(c, {"members"});
  for (const char* pod : {"member-a-", "member-b-", "member-c-"}) {
    EXPECT_NE(members.find(pod), std::string::npos) << members;
  }
  EXPECT_NE(members.find("(this)"), std::string::npos) << members;
  const auto members_json = json::parse(ctl(c, {"members", "--json"}));
  EXPECT_EQ(members_json.at("members").as_array().size(), 3u);

  for (auto& bench : benches) {
    const auto status = bench->wait_for(60s);
    ASSERT_TRUE(status.has_value()) << "pgbench did not finish";
    EXPECT_TRUE(status->success()) << bench->stdout_text();
    EXPECT_NE(bench->stdout_text().find("number of failed transactions: 0"), std::string::npos)
        << bench->stdout_text();
  }
  EXPECT_EQ(events_on(split_servers().target), 0) << "a write reached the target";
}

// Two changes based on the same epoch through two sidecars: exactly one wins, the other gets
// 409 with the current epoch; both are in the audit trail, the token is not.
TEST_F(ControlPlaneTest, ConcurrentChangesExactlyOneWinsAndBothAreAudited) {
  const std::string route = "fleet_race";
  PgshiftProcess a(member(route, "member-a"));
  PgshiftProcess b(member(route, "member-b"));
  const std::int64_t e0 = epoch_of(a, route);
  ASSERT_GE(e0, 0);
  const std::string base = ", \"epoch\": " + std::to_string(e0) + "}";
  auto fa = std::async(std::launch::async,
                       [&] { return put_percent(a, route, "{\"percent\": 10" + base); });
  auto fb = std::async(std::launch::async,
                       [&] { return put_percent(b, route, "{\"percent\": 20" + base); });
  const HttpResponse ra = fa.get(), rb = fb.get();
  const int wins = (ra.status == 200) + (rb.status == 200);
  const int conflicts = (ra.status == 409) + (rb.status == 409);
  EXPECT_EQ(wins, 1) << ra.describe() << "\n" << rb.describe() << "\n" << a.log();
  EXPECT_EQ(conflicts, 1) << ra.describe() << "\n" << rb.describe();
  const HttpResponse& lost = ra.status == 409 ? ra : rb;
  const json::value body = json::parse(lost.body);
  EXPECT_EQ(int_member(body, "epoch"), e0 + 1) << lost.body;

  auto& target = split_servers().target;
  const std::string audit = target
                                .exec(
                                    "SELECT string_agg(actor || ' ' || action || ' ' || "
                                    "coalesce(old::text, '') || ' ' || coalesce(new::text, '') "
                                    "|| ' ' || result, E'\\n') FROM pgshift.audit WHERE route = '" +
                                    route + "'")
                                .scalar();
  EXPECT_NE(audit.find("set_read_percent"), std::string::npos) << audit;
  EXPECT_NE(audit.find(" ok"), std::string::npos) << audit;
  EXPECT_NE(audit.find("refused: epoch conflict"), std::string::npos) << audit;
  EXPECT_NE(audit.find("admin:"), std::string::npos) << audit;
  for (auto* p : {&a, &b}) {
    EXPECT_EQ(audit.find(p->admin_token()), std::string::npos) << "token in the audit trail";
    EXPECT_EQ(p->log().find(p->admin_token()), std::string::npos) << "token in the log";
  }
}

// The control database goes away: every sidecar keeps serving reads and writes with its last
// state, changes get 503, pgshift_control_connected is 0; it comes back: they reconnect and
// converge on the next change without a restart.
TEST_F(ControlPlaneTest, ControlDatabaseOutageKeepsServingAndConverges) {
  const std::string route = "fleet_outage";
  auto& ctl = control_cluster();
  ctl.exec("DROP DATABASE IF EXISTS outage");
  ctl.exec("CREATE DATABASE outage OWNER ctl");
  const std::string control = "{host: 127.0.0.1, port: " + std::to_string(ctl.port()) +
                              ", database: outage, user: ctl, password: ctl-pw, poll_ms: 250}";
  PgshiftProcess a(member(route, "member-a", control));
  PgshiftProcess b(member(route, "member-b", control));
  PgshiftProcess c(member(route, "member-c", control));
  std::vector<PgshiftProcess*> fleet{&a, &b, &c};
  for (auto* p : fleet) ASSERT_TRUE(healthy(*p, route)) << p->log();
  ASSERT_EQ(put_percent(a, route, R"({"percent": 40})").status, 200);
  ASSERT_TRUE(wait_until([&] { return converged(fleet, route, 1, 3); }, 10s, "epoch 1 everywhere"));

  ctl.stop(StopMode::fast);
  for (auto* p : fleet) {
    ASSERT_TRUE(wait_until([&] { return gauge(*p, "pgshift_control_connected") == 0; }, 10s,
                           "pgshift_control_connected 0"));
  }
  const HttpResponse refused = put_percent(b, route, R"({"percent": 50})");
  EXPECT_EQ(refused.status, 503) << refused.describe();
  EXPECT_NE(refused.body.find("cannot be reached"), std::string::npos) << refused.body;
  for (auto* p : fleet) {
    PgConnection conn(client_conninfo(*p));
    for (int i = 0; i < 20; ++i) {
      const std::string key = "o" + std::to_string(i);
      EXPECT_EQ(side_of(conn, key), expected_side(key, 4000)) << "the last state (40 %) serves";
    }
    conn.exec("INSERT INTO events (k, n) VALUES ('outage', 1)");
  }
  EXPECT_EQ(events_on(split_servers().source, "k = 'outage'"), 3);

  ctl.start();
  for (auto* p : fleet) {
    ASSERT_TRUE(wait_until([&] { return gauge(*p, "pgshift_control_connected") == 1; }, 15s,
                           "pgshift_control_connected 1 again"));
  }
  const HttpResponse r = put_percent(c, route, R"({"percent": 50})");
  ASSERT_EQ(r.status, 200) << r.describe();
  EXPECT_TRUE(wait_until([&] { return converged(fleet, route, 2, 3); }, 10s, "epoch 2 everywhere"));
}

// Barrier: the coordinator's hold waits for an open transaction, new transactions wait
// (latency, no error), commit applies the new state everywhere and releases them onto it.
TEST_F(ControlPlaneTest, BarrierCommitsWhenEveryMemberAcknowledges) {
  const std::string route = "fleet_barrier";
  PgshiftProcess a(member(route, "member-a"));
  PgshiftProcess b(member(route, "member-b"));
  PgshiftProcess c(member(route, "member-c"));
  std::vector<PgshiftProcess*> fleet{&a, &b, &c};
  const std::int64_t e0 = epoch_of(a, route);
  ASSERT_TRUE(wait_until([&] { return converged(fleet, route, e0, 3); }, 10s, "three members"));
  ASSERT_TRUE(healthy(b, route)) << b.log();

  PgConnection open_txn(client_conninfo(a));
  open_txn.exec("BEGIN; SELECT side FROM marker");
  auto fleet_coordinator = coordinator();
  auto held = std::async(std::launch::async,
                         [&] { return fleet_coordinator.hold(hold_request(route, 8000ms)); });
  // The hold cannot complete while a's transaction is open.
  ASSERT_TRUE(wait_until([&] { return a.log().find("barrier: route held") != std::string::npos; },
                         10s, "member a holding the route"));
  EXPECT_EQ(held.wait_for(300ms), std::future_status::timeout) << "acknowledged while open";
  open_txn.exec("COMMIT");
  const control::HoldResult h = held.get();
  ASSERT_TRUE(h.ok) << h.error;
  EXPECT_EQ(h.members, 3);
  EXPECT_EQ(static_cast<std::int64_t>(h.epoch), e0);

  // A new transaction through b now waits at the barrier.
  auto waiting = std::async(std::launch::async, [&] {
    PgConnection conn(client_conninfo(b));
    return side_of(conn, "k1");
  });
  EXPECT_EQ(waiting.wait_for(300ms), std::future_status::timeout) << "not held";
  const control::CommitResult cr = fleet_coordinator.commit(route, routing::SetReadPercent{10000});
  ASSERT_TRUE(cr.ok) << cr.error;
  EXPECT_EQ(static_cast<std::int64_t>(cr.state.epoch), e0 + 1);
  EXPECT_EQ(waiting.get(), "target") << "the held read runs on the committed state (100 %)";
  EXPECT_TRUE(wait_until([&] { return converged(fleet, route, e0 + 1, 3); }, 10s,
                         "the committed epoch everywhere"));
  EXPECT_EQ(scalar(split_servers().target,
                   "SELECT op_state FROM pgshift.routes WHERE name = '" + route + "'"),
            "committed");
  EXPECT_EQ(scalar(split_servers().target,
                   "SELECT string_agg(action || ':' || result, ',' ORDER BY id) FROM "
                   "pgshift.audit WHERE route = '" +
                       route + "'"),
            "hold:prepare,commit:committed");
}

// One member is stopped (SIGSTOP): no acknowledgement, the coordinator aborts; held
// transactions on the others continue without an error and the state is unchanged.
TEST_F(ControlPlaneTest, BarrierAbortsWhenAMemberIsStopped) {
  const std::string route = "fleet_stopped";
  PgshiftProcess a(member(route, "member-a"));
  PgshiftProcess b(member(route, "member-b"));
  PgshiftProcess c(member(route, "member-c"));
  std::vector<PgshiftProcess*> fleet{&a, &b, &c};
  const std::int64_t e0 = epoch_of(a, route);
  ASSERT_TRUE(wait_until([&] { return converged(fleet, route, e0, 3); }, 10s, "three members"));
  c.send_signal(SIGSTOP);
  struct Resume {
    PgshiftProcess& p;
    ~Resume() { p.send_signal(SIGCONT); }
  } resume{c};

  auto fleet_coordinator = coordinator();
  auto held = std::async(std::launch::async,
                         [&] { return fleet_coordinator.hold(hold_request(route, 5000ms)); });
  ASSERT_TRUE(wait_until([&] { return b.log().find("barrier: acknowledged") != std::string::npos; },
                         10s, "member b acknowledging"));
  auto waiting = std::async(std::launch::async, [&] {
    PgConnection conn(client_conninfo(b));
    conn.exec("INSERT INTO events (k, n) VALUES ('held', 1)");
    return side_of(conn, "k1");
  });
  const control::HoldResult h = held.get();
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.error.find("member-c"), std::string::npos) << h.error;
  EXPECT_EQ(waiting.get(), expected_side("k1", 0)) << "the held transaction ran, unchanged state";
  EXPECT_EQ(events_on(split_servers().source, "k = 'held'"), 1);
  EXPECT_EQ(scalar(split_servers().target,
                   "SELECT op_state FROM pgshift.routes WHERE name = '" + route + "'"),
            "aborted");
  EXPECT_EQ(epoch_of(a, route), e0);
}

// The coordinator dies between prepare and commit: the members resume after the deadline,
// and the operation is marked aborted by one of them.
TEST_F(ControlPlaneTest, DeadCoordinatorIsCleanedUpAfterTheDeadline) {
  const std::string route = "fleet_orphan";
  PgshiftProcess a(member(route, "member-a"));
  PgshiftProcess b(member(route, "member-b"));
  std::vector<PgshiftProcess*> fleet{&a, &b};
  const std::int64_t e0 = epoch_of(a, route);
  ASSERT_TRUE(wait_until([&] { return converged(fleet, route, e0, 2); }, 10s, "two members"));
  {
    auto doomed = coordinator();
    const control::HoldResult h = doomed.hold(hold_request(route, 3000ms));
    ASSERT_TRUE(h.ok) << h.error;
  }  // gone: its connection closes with neither commit nor abort
  PgConnection conn(client_conninfo(a));
  EXPECT_EQ(side_of(conn, "k2"), expected_side("k2", 0)) << "resumed after the deadline";
  ASSERT_TRUE(wait_until(
      [&] {
        return scalar(split_servers().target, "SELECT op_state FROM pgshift.routes WHERE name = '" +
                                                  route + "'") == "aborted";
      },
      10s, "the operation marked aborted"));
  EXPECT_EQ(scalar(split_servers().target, "SELECT count(*) FROM pgshift.audit WHERE route = '" +
                                               route + "' AND action = 'abort_expired'"),
            "1");
  EXPECT_EQ(epoch_of(b, route), e0);
}

// Five sidecars start at once against an empty control database: the schema is created
// exactly once and all five join.
TEST_F(ControlPlaneTest, FiveSidecarsRaceToCreateTheSchema) {
  auto& ctl = control_cluster();
  if (!ctl.running()) ctl.start();
  ctl.exec("DROP DATABASE IF EXISTS race");
  ctl.exec("CREATE DATABASE race OWNER ctl");
  const std::string control = "{host: 127.0.0.1, port: " + std::to_string(ctl.port()) +
                              ", database: race, user: ctl, password: ctl-pw, poll_ms: 250}";
  std::vector<std::unique_ptr<PgshiftProcess>> fleet;
  for (int i = 0; i < 5; ++i) {
    fleet.push_back(std::make_unique<PgshiftProcess>(
        member("fleet_race5", "racer-" + std::to_string(i), control, false)));
  }
  for (auto& p : fleet) {
    // Started without waiting: its admin port first (a metrics fetch before it listens
    // is a test failure; found with a slower ASan build).
    ASSERT_TRUE(wait_for_port("127.0.0.1", p->admin_port(), 15s)) << p->log();
    ASSERT_TRUE(wait_until([&] { return gauge(*p, "pgshift_control_connected") == 1; }, 15s,
                           "every racer connected"))
        << p->log();
  }
  auto count = [&](const std::string& table) {
    return ctl.exec("SELECT count(*) FROM pgshift." + table, "race").scalar();
  };
  EXPECT_EQ(count("schema_version"), "2");
  int migrated = 0;
  for (auto& p : fleet) migrated += p->log().find("control schema migrated") != std::string::npos;
  EXPECT_EQ(migrated, 1);
  EXPECT_TRUE(wait_until([&] { return count("members") == "5"; }, 10s, "five member rows"));
  fleet.clear();  // SIGTERM: every member deletes its row
  EXPECT_EQ(count("members"), "0");
}

}  // namespace
}  // namespace pgshift::test
