// Stale sidecars (issue 13 part 3, docs/cutover.md "Stale sidecars"): a sidecar that missed a
// cutover still sends writes to the source, whose fence refuses them. No write lands there;
// a transaction that ran nothing but BEGIN / SET LOCAL before its fenced statement runs again
// on the target without the client noticing (simple and extended protocol, named and
// pipelined statements, transaction and session pooling), anything else gets 40001. With
// the control plane: a sidecar cut off from the control database (a TCP forwarder that stops
// forwarding) meets the fence, gets 40001 while it cannot learn the new state, and recovers
// onto the target once the control connection is back; a sidecar SIGKILLed while the fleet
// holds for a cutover never leaves both sides writable.
//
// Same clusters and schema as cutover_test (cutover_support.hpp); every sidecar here uses
// trust client authentication so that raw sockets can play a driver byte for byte.
#include <gtest/gtest.h>
#include <signal.h>

#include <future>
#include <iostream>

#include "proxy/migrate/cutover_db.hpp"
#include "tests/integration/cutover_support.hpp"
#include "tests/integration/helpers.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kInitialState =
    R"({"version": 1, "routes": {"app": {"phase": "sync", "read_percent_bp": 0, "epoch": 1}}})";

// Ledger writes per second per writer: logical apply keeps up with that on a busy CI machine
// (the lag precondition of every cutover here).
constexpr int kWritesPerSecond = 200;

CutoverServers& servers() {
  return cutover_servers();
}

// A sidecar of route app. `control`: "file" (state file in {{dir}}, or `state_file` when
// given: another sidecar's), or the YAML of a control database.
PgshiftOptions sidecar(const std::string& pool_mode, const std::string& control = "file",
                       const std::string& state_file = {}, const std::string& pod = "sidecar") {
  ConfigSpec spec;
  spec.client_auth_method = "trust";
  spec.control = control;
  RouteSpec route{.name = kRoute,
                  .client_database = kDb,
                  .source = upstream_of(servers().source, {}, kDb),
                  .target = upstream_of(servers().target, {}, kDb),
                  .pool_mode = pool_mode,
                  .pool_size = 6};
  spec.routes.push_back(route);
  PgshiftOptions o{.config_yaml = spec.to_yaml(),
                   .users = users_file_text({{"app", "app-pw"}}),
                   .env = {{"POD_NAME", pod}}};
  if (control == "file" && state_file.empty()) o.files = {{"pgshift-state.json", kInitialState}};
  if (!state_file.empty()) {
    const std::string own = "\"{{dir}}/pgshift-state.json\"";
    const auto at = o.config_yaml.find(own);
    if (at == std::string::npos) throw std::runtime_error("no state_file in\n" + o.config_yaml);
    o.config_yaml.replace(at, own.size(), "\"" + state_file + "\"");
  }
  return o;
}

CommandResult ctl(const PgshiftProcess& p, std::vector<std::string> args) {
  return run_ctl(p, std::move(args));
}

std::string route_json(const PgshiftProcess& p) {
  return ctl(p, {"--json", "route", kRoute}).out;
}

bool fenced(const PgCluster& c) {
  auto conn = pgclient::Connection::connect(app_conninfo(c));
  return !migrate::fenced_tables(conn).empty();
}

std::string client(const PgshiftProcess& p) {
  return p.conninfo("app", "", kDb);
}

// ---- raw protocol: a driver byte for byte ----

std::string query(const std::string& sql) {
  return frontend_message('Q', sql + '\0');
}
std::string parse(const std::string& name, const std::string& sql) {
  return frontend_message('P', name + '\0' + sql + '\0' + std::string(2, '\0'));
}
// Bind of statement `name` to the unnamed portal, text parameters, default result format.
std::string bind(const std::string& name, const std::vector<std::string>& params) {
  std::string body = std::string(1, '\0') + name + '\0' + std::string(2, '\0');
  body += static_cast<char>(params.size() >> 8);
  body += static_cast<char>(params.size() & 0xff);
  for (const auto& p : params) body += be32(static_cast<std::uint32_t>(p.size())) + p;
  return frontend_message('B', body + std::string(2, '\0'));
}
std::string describe_portal() {
  return frontend_message('D', std::string("P") + '\0');
}
std::string execute() {
  return frontend_message('E', std::string(1, '\0') + be32(0));
}
std::string sync() {
  return frontend_message('S', "");
}

class RawClient {
 public:
  explicit RawClient(const PgshiftProcess& p) : socket_(RawSocket::connect(p.host(), p.port())) {
    if (!socket_.send(startup_packet({{"user", "app"}, {"database", kDb}}))) {
      throw std::runtime_error("startup not sent");
    }
    exchange("", 1);  // up to the first ReadyForQuery
  }
  // Sends bytes and reads until `ready` ReadyForQuery messages came; the messages, in order.
  std::vector<BackendMessage> exchange(const std::string& bytes, int ready) {
    if (!bytes.empty() && !socket_.send(bytes)) throw std::runtime_error("send failed");
    std::string in;
    const auto deadline = SteadyClock::now() + 20s;
    auto count = [&] {
      int z = 0;
      for (const auto& m : parse_backend_messages(in)) z += m.type == 'Z';
      return z;
    };
    while (count() < ready && !socket_.closed() && SteadyClock::now() < deadline) {
      in += socket_.receive(1, 1s);
    }
    return parse_backend_messages(in);
  }

 private:
  RawSocket socket_;
};

// "C:INSERT 0 1 Z:T" for comparing answers: type and body (bodies of errors by SQLSTATE).
std::string describe(const std::vector<BackendMessage>& ms) {
  std::string out;
  for (const auto& m : ms) {
    if (!out.empty()) out += ' ';
    out += m.type;
    if (m.type == 'E' || m.type == 'N') {
      out += ":" + error_fields(m.body)['C'];
    } else if (m.type != 'D' && m.type != 'T') {
      std::string b = m.body;
      while (!b.empty() && b.back() == '\0') b.pop_back();
      if (!b.empty()) out += ":" + b;
    }
  }
  return out;
}

class StaleSidecarTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { servers().reset(); }
};

// Each case runs through its own stale sidecar (a file-mode sidecar sharing the
// coordinator's state file, which it re-reads only when the fence tells it to), connected and
// warmed up on the source before the cutover. After the cutover every case's first write meets
// the source's fence and runs again on the target: no client error, and what the client
// reads is what a run through the up-to-date sidecar gives.
TEST_P(StaleSidecarTest, ExplicitAndExtendedTransactionsRunAgainOnTheNewSide) {
  auto& s = servers();
  const std::string mode = GetParam();
  PgshiftProcess coordinator(sidecar(mode));
  const std::string state_file = (coordinator.dir() / "pgshift-state.json").string();
  std::vector<std::unique_ptr<PgshiftProcess>> stale;
  for (int i = 0; i < 8; ++i) {
    stale.push_back(std::make_unique<PgshiftProcess>(sidecar(mode, "file", state_file)));
  }
  std::vector<std::unique_ptr<PgConnection>> conns;
  for (int i = 0; i < 6; ++i) {
    conns.push_back(std::make_unique<PgConnection>(client(*stale[static_cast<std::size_t>(i)])));
    conns.back()->exec_params("INSERT INTO ledger VALUES ($1, 'before')", {std::to_string(i + 1)});
  }
  PGconn* named = conns[3]->native();
  PGresult* prepared =
      PQprepare(named, "ins", "INSERT INTO ledger VALUES ($1, 'named')", 1, nullptr);
  ASSERT_EQ(PQresultStatus(prepared), PGRES_COMMAND_OK) << PQresultErrorMessage(prepared);
  PQclear(prepared);
  const char* id400 = "400";  // used once on the source: its server there has it
  prepared = PQexecPrepared(named, "ins", 1, &id400, nullptr, nullptr, 0);
  ASSERT_EQ(PQresultStatus(prepared), PGRES_COMMAND_OK) << PQresultErrorMessage(prepared);
  PQclear(prepared);
  RawClient raw_simple(*stale[6]), raw_extended(*stale[7]);
  raw_simple.exchange(query("SELECT 1"), 1);
  raw_extended.exchange(query("SELECT 1"), 1);

  auto cut = ctl(coordinator, {"cutover", kRoute, "--skip-verify"});
  ASSERT_TRUE(cut.success()) << cut.describe();
  for (auto& p : stale) ASSERT_NE(route_json(*p).find("\"phase\":\"sync\""), std::string::npos);

  // 1. BEGIN, then the write, as separate Queries.
  conns[0]->exec("BEGIN");
  conns[0]->exec("INSERT INTO ledger VALUES (101, 'explicit')");
  conns[0]->exec("INSERT INTO ledger VALUES (102, 'explicit')");
  conns[0]->exec("COMMIT");
  // 2. One multi-statement Query: BEGIN; SET LOCAL; the writes; COMMIT.
  conns[1]->exec(
      "BEGIN; SET LOCAL statement_timeout = '10s'; INSERT INTO ledger VALUES (201, 'multi'); "
      "INSERT INTO ledger VALUES (202, 'multi'); COMMIT");
  // 3. Extended protocol, unnamed statement, autocommit.
  conns[2]->exec_params("INSERT INTO ledger VALUES ($1, 'unnamed')", {"301"});
  // 4. A named prepared statement the target's server has never seen.
  const char* id401 = "401";
  PGresult* r = PQexecPrepared(named, "ins", 1, &id401, nullptr, nullptr, 0);
  EXPECT_EQ(PQresultStatus(r), PGRES_COMMAND_OK) << PQresultErrorMessage(r);
  PQclear(r);
  // 5. BEGIN through the extended protocol, then the write.
  conns[4]->exec_params("BEGIN", {});
  conns[4]->exec_params("INSERT INTO ledger VALUES ($1, 'extended txn')", {"501"});
  conns[4]->exec("COMMIT");
  // 6. Two unnamed statements pipelined before one Sync.
  PGconn* pipe = conns[5]->native();
  ASSERT_EQ(PQenterPipelineMode(pipe), 1);
  for (const char* id : {"601", "602"}) {
    ASSERT_EQ(PQsendQueryParams(pipe, "INSERT INTO ledger VALUES ($1, 'pipelined')", 1, nullptr,
                                &id, nullptr, nullptr, 0),
              1);
  }
  ASSERT_EQ(PQpipelineSync(pipe), 1);
  for (ExecStatusType want : {PGRES_COMMAND_OK, PGRES_COMMAND_OK, PGRES_PIPELINE_SYNC}) {
    PGresult* res = PQgetResult(pipe);
    ASSERT_NE(res, nullptr) << PQerrorMessage(pipe);
    EXPECT_EQ(PQresultStatus(res), want) << PQresultErrorMessage(res);
    PQclear(res);
    if (want != PGRES_PIPELINE_SYNC) {
      EXPECT_EQ(PQgetResult(pipe), nullptr);
    }
  }
  ASSERT_EQ(PQexitPipelineMode(pipe), 1);

  // 7. Byte for byte: the stale sidecar's answers are those of the up-to-date one.
  RawClient reference(coordinator);
  const auto begin_answer = describe(raw_simple.exchange(query("BEGIN"), 1));
  EXPECT_EQ(begin_answer, describe(reference.exchange(query("BEGIN"), 1)));
  const auto insert_answer =
      describe(raw_simple.exchange(query("INSERT INTO ledger VALUES (701, 'raw')"), 1));
  EXPECT_EQ(insert_answer, "C:INSERT 0 1 Z:T");
  EXPECT_EQ(insert_answer,
            describe(reference.exchange(query("INSERT INTO ledger VALUES (702, 'raw')"), 1)));
  EXPECT_EQ(describe(raw_simple.exchange(query("COMMIT"), 1)), "C:COMMIT Z:I");
  reference.exchange(query("COMMIT"), 1);
  auto batch = [](const std::string& id) {
    return parse("s1", "INSERT INTO ledger VALUES ($1, 'raw named') RETURNING id") +
           bind("s1", {id}) + describe_portal() + execute() + sync();
  };
  const auto extended_answer = describe(raw_extended.exchange(batch("801"), 1));
  EXPECT_EQ(extended_answer, "1 2 T D C:INSERT 0 1 Z:I");
  EXPECT_EQ(extended_answer, describe(reference.exchange(batch("802"), 1)));

  const auto on_target = ledger_ids(s.target);
  for (std::int64_t id : {101, 102, 201, 202, 301, 401, 501, 601, 602, 701, 801}) {
    EXPECT_TRUE(on_target.contains(id)) << id;
  }
  for (std::size_t i = 0; i < stale.size(); ++i) {
    EXPECT_NE(stale[i]->log().find("the transaction runs again on the new side"), std::string::npos)
        << "case " << i + 1 << "\n"
        << stale[i]->log();
    EXPECT_EQ(stale[i]->log().find("retryable error"), std::string::npos) << stale[i]->log();
  }
}

// What cannot run again is not: a write after a read in the transaction gets 40001, the
// client rolls back, and its retry goes to the target.
TEST_P(StaleSidecarTest, AWriteAfterAReadInItsTransactionGetsARetryableError) {
  auto& s = servers();
  PgshiftProcess coordinator(sidecar(GetParam()));
  PgshiftProcess stale(
      sidecar(GetParam(), "file", (coordinator.dir() / "pgshift-state.json").string()));
  PgConnection conn(client(stale));
  conn.exec("INSERT INTO ledger VALUES (1, 'before')");
  ASSERT_TRUE(ctl(coordinator, {"cutover", kRoute, "--skip-verify"}).success());
  conn.exec("BEGIN");
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM ledger"), "1");
  try {
    conn.exec("INSERT INTO ledger VALUES (2, 'after a read')");
    ADD_FAILURE() << "a stale sidecar wrote to the fenced source";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "40001") << e.what();
    EXPECT_NE(std::string(e.what()).find("moved to the target during this transaction"),
              std::string::npos)
        << e.what();
  }
  conn.exec("ROLLBACK");
  conn.exec("BEGIN");
  EXPECT_EQ(conn.scalar("SELECT count(*) FROM ledger"), "1");
  conn.exec("INSERT INTO ledger VALUES (2, 'retried')");
  conn.exec("COMMIT");
  EXPECT_EQ(ledger_ids(s.target), (std::set<std::int64_t>{1, 2}));
}

INSTANTIATE_TEST_SUITE_P(PoolModes, StaleSidecarTest, ::testing::Values("transaction", "session"),
                         [](const auto& param_info) { return param_info.param; });

// ---- with the control plane (control database: the target's database app) ----

class StaleControlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    servers().reset();
    // The route's row, members and acknowledgements of an earlier test go.
    servers().target.exec(
        "DO $$BEGIN IF to_regclass('pgshift.routes') IS NOT NULL THEN "
        "DELETE FROM pgshift.routes; DELETE FROM pgshift.members; DELETE FROM pgshift.acks; "
        "END IF; END$$",
        kDb);
  }
  // Members whose id starts with `pod` and whose heartbeat is younger than `ms` (0 before the
  // first sidecar made the table).
  static int live_members(int ms, const std::string& pod = {}) {
    try {
      return std::stoi(servers()
                           .target
                           .exec("SELECT count(*) FROM pgshift.members WHERE heartbeat_at > "
                                 "now() - " +
                                     std::to_string(ms) + " * interval '1 ms' AND id LIKE '" + pod +
                                     "%'",
                                 kDb)
                           .scalar());
    } catch (const PgError&) {
      return 0;
    }
  }
  static std::string phase(const PgshiftProcess& p) {
    const std::string route = route_json(p);
    const auto at = route.find("\"phase\":\"");
    if (at == std::string::npos) return route;
    const auto from = at + 9;
    return route.substr(from, route.find('"', from) - from);
  }
  static std::string control_through(const TcpForwarder& link, const std::string& more) {
    const auto& t = servers().target;
    return "{host: 127.0.0.1, port: " + std::to_string(link.port()) + ", database: " + kDb +
           ", user: " + yaml_quote(t.superuser()) +
           ", password: " + yaml_quote(t.superuser_password()) + ", " + more + "}";
  }
};

void expect_retryable(PgConnection& conn, const std::string& sql) {
  try {
    conn.exec(sql);
    ADD_FAILURE() << sql << ": a stale sidecar wrote through the fence";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "40001") << e.what();
    EXPECT_NE(std::string(e.what()).find("route app moved away from the source"), std::string::npos)
        << e.what();
  }
}

// A sidecar whose connection to the control database stops moving bytes (a partition; the
// TCP connection stays open) misses a cutover coordinated by the other one. Its next writes
// meet the source's fence and, since it cannot learn the new state, get 40001 with nothing
// written anywhere; once the link is back it follows the target, and its clients' writes land
// there. Every acknowledged write is on the target.
TEST_F(StaleControlTest, ASidecarCutOffFromTheControlDatabaseMeetsTheFenceAndRecovers) {
  auto& s = servers();
  TcpForwarder link("127.0.0.1", s.target.port());
  const std::string fast = "poll_ms: 250, member_timeout_ms: 3000";
  PgshiftProcess a(sidecar("transaction", "{" + fast + "}", {}, "coordinator"));
  PgshiftProcess b(sidecar("transaction", control_through(link, fast), {}, "cut-off"));
  ASSERT_TRUE(wait_until([] { return live_members(2000) == 2; }, 15s, "two live members"));
  LedgerWriter wa(client(a), 1'000'000, kWritesPerSecond),
      wb(client(b), 2'000'000, kWritesPerSecond);
  ASSERT_TRUE(wait_until([&] { return wa.count() > 20 && wb.count() > 20; }, 30s, "writes"));
  PgConnection through_b(client(b));
  through_b.exec("INSERT INTO ledger VALUES (1, 'before')");

  const std::string phase_before = phase(b);
  ASSERT_NE(phase_before, "target_primary");
  link.block();
  ASSERT_TRUE(wait_until([] { return live_members(3000, "cut-off-") == 0; }, 15s,
                         "the cut-off sidecar no longer live"));
  auto cut = ctl(a, {"cutover", kRoute, "--skip-verify", "--max-lag-ms", "5000"});
  ASSERT_TRUE(cut.success()) << cut.describe() << a.log();
  EXPECT_NE(cut.out.find("1 member(s) holding"), std::string::npos) << cut.out;
  ASSERT_EQ(phase(b), phase_before) << "the cut-off sidecar learnt the new state";

  expect_retryable(through_b, "INSERT INTO ledger VALUES (2, 'cut off, autocommit')");
  through_b.exec("BEGIN");
  expect_retryable(through_b, "INSERT INTO ledger VALUES (3, 'cut off, explicit')");
  through_b.exec("ROLLBACK");
  for (const PgCluster* c : {&s.source, &s.target}) {
    const auto ids = ledger_ids(*c);
    EXPECT_FALSE(ids.contains(2) || ids.contains(3)) << c->name();
  }
  try {
    s.source.exec("INSERT INTO ledger VALUES (-1, 'direct')", kDb);
    ADD_FAILURE() << "a direct write to the fenced source succeeded";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "25006") << e.what();
  }

  link.unblock();
  ASSERT_TRUE(wait_until(
      [&] { return route_json(b).find("\"phase\":\"target_primary\"") != std::string::npos; }, 15s,
      "the cut-off sidecar following the target"));
  through_b.exec("INSERT INTO ledger VALUES (4, 'recovered')");
  EXPECT_TRUE(ledger_ids(s.target).contains(4));
  const auto before = wb.count();
  ASSERT_TRUE(wait_until([&] { return wb.count() > before + 20; }, 30s, "writes after recovery"));
  wa.stop();
  wb.stop();
  EXPECT_EQ(wa.errors(), std::vector<std::string>{});
  for (const auto& e : wb.errors()) {
    EXPECT_NE(e.find("moved away from the source"), std::string::npos) << e;
  }
  std::set<std::int64_t> acked = wa.acknowledged();
  const auto acked_b = wb.acknowledged();
  acked.insert(acked_b.begin(), acked_b.end());
  const auto on_target = ledger_ids(s.target);
  std::vector<std::int64_t> missing;
  for (auto id : acked) {
    if (!on_target.contains(id)) missing.push_back(id);
  }
  EXPECT_EQ(missing, std::vector<std::int64_t>{});
}

struct KillCase {
  std::string name;
  int member_timeout_ms;
  int drain_timeout_ms;
  bool completes;  // the dead member's heartbeat expires within the acknowledgement wait
};

class KilledDuringHoldTest : public StaleControlTest,
                             public ::testing::WithParamInterface<KillCase> {};

// Two sidecars on one control database; the second holds an open write transaction, so its
// side of the barrier cannot acknowledge the cutover's hold (it waits for the transaction to
// end) and the test knows it is in the hold when its log says so. It is SIGKILLed there. With
// a member timeout longer than the acknowledgement wait the cutover aborts (the dead member
// is still live and never acknowledged); with a shorter one the dead member drops out of the
// fleet and the cutover completes. Either way exactly one side takes writes and the other is
// fenced (the target starts fenced, as a rollback leaves it), and every acknowledged write is
// on the side that takes writes.
TEST_P(KilledDuringHoldTest, NeverLeavesBothSidesWritable) {
  auto& s = servers();
  const KillCase& k = GetParam();
  {
    auto target = pgclient::Connection::connect(app_conninfo(s.target));
    auto source = pgclient::Connection::connect(app_conninfo(s.source));
    migrate::fence_tables(target, migrate::publication_tables(source, "pgshift_app"), kRoute,
                          "source", 5s);
  }
  const std::string control =
      "{poll_ms: 250, member_timeout_ms: " + std::to_string(k.member_timeout_ms) + "}";
  PgshiftProcess a(sidecar("transaction", control, {}, "coordinator"));
  PgshiftProcess b(sidecar("transaction", control, {}, "killed"));
  ASSERT_TRUE(wait_until([] { return live_members(2000) == 2; }, 15s, "two live members"));
  LedgerWriter wa(client(a), 1'000'000, kWritesPerSecond);
  ASSERT_TRUE(wait_until([&] { return wa.count() > 20; }, 30s, "writes"));
  auto open = std::make_unique<PgConnection>(client(b));
  open->exec("BEGIN; INSERT INTO ledger VALUES (-100, 'open on the killed sidecar')");

  const std::string phase_before = phase(a);
  auto cut = std::async(std::launch::async, [&] {
    return ctl(a, {"cutover", kRoute, "--skip-verify", "--max-lag-ms", "5000", "--drain-timeout-ms",
                   std::to_string(k.drain_timeout_ms)});
  });
  ASSERT_TRUE(b.wait_for_log("barrier: route held", 20s)) << b.log();
  b.send_signal(SIGKILL);
  const CommandResult r = cut.get();
  open.reset();
  std::cout << r.out;
  EXPECT_NE(
      r.out.find(std::string("cutover of route app: ") + (k.completes ? "completed" : "aborted")),
      std::string::npos)
      << r.describe() << a.log();
  if (!k.completes) {
    EXPECT_NE(r.out.find("no acknowledgement"), std::string::npos) << r.out;
  }

  const std::string phase_after = phase(a);
  const bool moved = phase_after == "target_primary";
  EXPECT_EQ(phase_after, k.completes ? "target_primary" : phase_before);
  EXPECT_EQ(fenced(s.source), moved);
  EXPECT_EQ(fenced(s.target), !moved);
  const PgCluster& writable = moved ? s.target : s.source;
  const PgCluster& closed = moved ? s.source : s.target;
  try {
    closed.exec("INSERT INTO ledger VALUES (-1, 'direct')", kDb);
    ADD_FAILURE() << "a direct write to the fenced " << closed.name() << " succeeded";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "25006") << e.what();
  }
  const auto before = wa.count();
  ASSERT_TRUE(wait_until([&] { return wa.count() > before + 20; }, 30s, "writes afterwards"));
  wa.stop();
  EXPECT_EQ(wa.errors(), std::vector<std::string>{});
  const auto have = ledger_ids(writable);
  std::vector<std::int64_t> missing;
  for (auto id : wa.acknowledged()) {
    if (!have.contains(id)) missing.push_back(id);
  }
  EXPECT_EQ(missing, std::vector<std::int64_t>{});
  for (const PgCluster* c : {&s.source, &s.target}) {
    EXPECT_FALSE(ledger_ids(*c).contains(-100)) << "the killed sidecar's open transaction";
  }
}

INSTANTIATE_TEST_SUITE_P(Outcomes, KilledDuringHoldTest,
                         ::testing::Values(KillCase{"aborts", 10000, 3000, false},
                                           KillCase{"completes", 3000, 6000, true}),
                         [](const auto& param_info) { return param_info.param.name; });

}  // namespace
}  // namespace pgshift::test
