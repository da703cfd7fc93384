// Transaction pooling through the real pgshift binary against a real PostgreSQL 15: session
// state pins a client to its server (and SET LOCAL does not), query_wait_timeout is a
// non-fatal 53300, cancel reaches the server running the client's query and nothing else, and
// an upstream restart costs only the transactions in flight. The relay under load is in
// transaction_pool_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <mutex>
#include <thread>

#include "tests/integration/helpers.hpp"
#include "tests/integration/transaction_pool_helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class TransactionPoolStateTest : public TxnPoolFixture {};

// ---- pinning ----

struct PinCase {
  std::string reason;              // the label of pgshift_session_pins_total
  std::string log_reason;          // the "reason" of the "session pinned ..." log line
  std::vector<std::string> setup;  // run one by one (simple protocol) by the pinned client
  // The state is still there, the i-th time; other is another client of the same pgshift.
  std::function<void(PgConnection& client, PgConnection& other, int i)> check;
};

void PrintTo(const PinCase& c, std::ostream* os) {
  *os << c.reason;
}

class PinTest : public TransactionPoolStateTest, public ::testing::WithParamInterface<PinCase> {};

// The client runs the session-state statement, then: (1) its server stays its own while it is
// idle (pool of 2: one competitor in a transaction gets the other server, a second one waits
// until 53300); (2) 20 times, while competitors keep the other server busy, a transaction and
// the state check (its own transactions) run on the same backend, and the state is there;
// (3) the pin is counted and logged with its reason; (4) after the client leaves, no state is
// left on the servers for the next clients.
TEST_P(PinTest, SessionStatePinsTheClientToItsServer) {
  const PinCase& pin = GetParam();
  auto proxy = start_txn_proxy(source(), {.pool_size = 2, .query_wait_timeout_ms = 1000});
  const std::string c = client_conninfo(proxy);
  PgConnection client(c);
  PgConnection first(c);
  PgConnection second(c);
  for (const std::string& sql : pin.setup) client.exec(sql);
  const std::string pid = client.scalar("SELECT pg_backend_pid()");

  first.exec("BEGIN");
  EXPECT_NE(first.scalar("SELECT pg_backend_pid()"), pid) << "the pinned server was handed out";
  const auto started = SteadyClock::now();
  EXPECT_EQ(sqlstate_of([&] { second.exec("SELECT 1"); }), "53300")
      << "a third client got a server although one is pinned and one is in a transaction";
  EXPECT_GE(SteadyClock::now() - started, 900ms);
  first.exec("COMMIT");

  {
    BusyClients busy(c, 3);
    ASSERT_TRUE(wait_until([&] { return busy.done() > 0; }, 10s, "competing transactions"));
    for (int i = 0; i < 20; ++i) {
      SCOPED_TRACE("transaction " + std::to_string(i));
      client.exec("BEGIN");
      EXPECT_EQ(client.scalar("SELECT pg_backend_pid()"), pid);
      client.exec("COMMIT");
      pin.check(client, first, i);
      EXPECT_EQ(client.scalar("SELECT pg_backend_pid()"), pid);
      if (HasFailure()) break;
    }
    busy.stop();
    EXPECT_THAT(busy.errors(), ::testing::IsEmpty());
  }

  // Once the pinned client has gone, its state does not reach the next clients of that server
  // (pool of 2: two clients in transactions hold every server there is).
  client = PgConnection(c);  // the old connection closes
  first.exec("BEGIN");
  second.exec("BEGIN");
  const std::string leftovers =
      "SELECT current_setting('work_mem') || ' listen=' || (SELECT count(*) FROM "
      "pg_listening_channels()) || ' cursors=' || (SELECT count(*) FROM pg_cursors) || "
      "' prepared=' || (SELECT count(*) FROM pg_prepared_statements WHERE from_sql) || "
      "' advisory=' || (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = "
      "pg_backend_pid()) || ' temp=' || (to_regclass('pg_temp.scratch') IS NOT NULL)";
  EXPECT_EQ(first.scalar(leftovers), "4MB listen=0 cursors=0 prepared=0 advisory=0 temp=false");
  EXPECT_EQ(second.scalar(leftovers), "4MB listen=0 cursors=0 prepared=0 advisory=0 temp=false");
  first.exec("COMMIT");
  second.exec("COMMIT");

  const std::string metrics = fetch_metrics(proxy);
  EXPECT_EQ(metric_value(metrics, "pgshift_session_pins_total",
                         {{"route", "main"}, {"reason", pin.reason}}),
            1.0)
      << metric_lines(metrics, "pgshift_session_pins_total");
  const std::string log = proxy.log();
  bool logged = false;
  std::istringstream lines(log);
  for (std::string line; std::getline(lines, line);) {
    // The log's own wording of the reason, or the metric's label.
    const bool reason = line.find("\"reason\":\"" + pin.log_reason + "\"") != std::string::npos ||
                        line.find("\"reason\":\"" + pin.reason + "\"") != std::string::npos;
    logged = logged || (line.find("session pinned") != std::string::npos && reason);
  }
  EXPECT_TRUE(logged) << "no \"session pinned\" log line with reason " << pin.log_reason << ":\n"
                      << tail_of(log);
}

std::vector<PinCase> pin_cases() {
  return {
      {.reason = "set_session",
       .log_reason = "SET",
       .setup = {"SET work_mem = '7MB'"},
       .check = [](PgConnection& c, PgConnection&,
                   int) { EXPECT_EQ(c.scalar("SHOW work_mem"), "7MB"); }},
      {.reason = "listen",
       .log_reason = "LISTEN",
       .setup = {"LISTEN txn_pool_events"},
       .check =
           [](PgConnection& c, PgConnection& other, int i) {
             // Delivered to the idle client when the other client's NOTIFY commits.
             other.exec("NOTIFY txn_pool_events, 'n" + std::to_string(i) + "'");
             const auto n = wait_for_notification(c.native(), 10s);
             ASSERT_TRUE(n.has_value()) << "no notification " << i;
             EXPECT_EQ(n->channel, "txn_pool_events");
             EXPECT_EQ(n->payload, "n" + std::to_string(i));
           }},
      {.reason = "advisory_lock",
       .log_reason = "advisory lock",
       .setup = {"SELECT pg_advisory_lock(424242)"},
       .check =
           [](PgConnection& c, PgConnection&, int) {
             EXPECT_EQ(source()
                           .exec("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND "
                                 "objid = 424242 AND granted",
                                 kDatabase)
                           .scalar(),
                       c.scalar("SELECT pg_backend_pid()"));
           }},
      {.reason = "temp_table",
       .log_reason = "temp table",
       .setup = {"CREATE TEMP TABLE scratch (x int)"},
       .check =
           [](PgConnection& c, PgConnection&, int i) {
             c.exec("INSERT INTO scratch VALUES (" + std::to_string(i) + ")");
             EXPECT_EQ(c.scalar("SELECT count(*) FROM scratch"), std::to_string(i + 1));
           }},
      {.reason = "with_hold",
       .log_reason = "WITH HOLD cursor",
       .setup = {"BEGIN",
                 "DECLARE held CURSOR WITH HOLD FOR SELECT g FROM generate_series(1, 100) g",
                 "COMMIT"},
       .check = [](PgConnection& c, PgConnection&,
                   int i) { EXPECT_EQ(c.scalar("FETCH 1 FROM held"), std::to_string(i + 1)); }},
      {.reason = "prepare_sql",
       .log_reason = "PREPARE",
       .setup = {"PREPARE double_it(int) AS SELECT $1 * 2"},
       .check =
           [](PgConnection& c, PgConnection&, int i) {
             EXPECT_EQ(c.scalar("EXECUTE double_it(" + std::to_string(i) + ")"),
                       std::to_string(2 * i));
           }},
  };
}

INSTANTIATE_TEST_SUITE_P(Reasons, PinTest, ::testing::ValuesIn(pin_cases()),
                         [](const auto& param_info) { return param_info.param.reason; });

// SET LOCAL (and set_config(..., true)) ends with its transaction: no pin, the client's server
// goes back to the pool, and the setting is gone afterwards.
TEST_F(TransactionPoolStateTest, SetLocalDoesNotPin) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 2, .query_wait_timeout_ms = 5000});
  const std::string c = client_conninfo(proxy);
  PgConnection client(c);
  PgConnection first(c);
  PgConnection second(c);
  client.exec("BEGIN");
  client.exec("SET LOCAL work_mem = '7MB'");
  client.exec("SELECT set_config('statement_timeout', '5min', true)");
  EXPECT_EQ(client.scalar("SHOW work_mem"), "7MB");
  client.exec("COMMIT");
  // Both servers can be taken by others while the client is idle.
  first.exec("BEGIN");
  second.exec("BEGIN");
  EXPECT_NE(first.scalar("SELECT pg_backend_pid()"), second.scalar("SELECT pg_backend_pid()"));
  first.exec("COMMIT");
  second.exec("COMMIT");
  EXPECT_EQ(client.scalar("SHOW work_mem"), "4MB");
  EXPECT_EQ(client.scalar("SHOW statement_timeout"), "0");

  const std::string metrics = fetch_metrics(proxy);
  EXPECT_EQ(metric_value(metrics, "pgshift_session_pins_total", {{"route", "main"}}).value_or(0.0),
            0.0)
      << metric_lines(metrics, "pgshift_session_pins_total");
  EXPECT_THAT(proxy.log(), ::testing::Not(HasSubstr("session pinned")));
}

// ---- query_wait_timeout ----

// Pool of 1 held by a client's open transaction: another client's query, simple or extended,
// gets 53300 after query_wait_timeout_ms, and its connection carries on once the server is free.
TEST_F(TransactionPoolStateTest, QueryWaitTimeoutIsNotFatal) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 1, .query_wait_timeout_ms = 500});
  const std::string c = client_conninfo(proxy);
  PgConnection holder(c);
  PgConnection waiter(c);
  holder.exec("BEGIN");
  const std::string holder_pid = holder.scalar("SELECT pg_backend_pid()");

  auto started = SteadyClock::now();
  std::string error;
  try {
    waiter.exec("SELECT 'never'");
  } catch (const PgError& e) {
    error = e.sqlstate() + " " + e.what();
  }
  auto waited = SteadyClock::now() - started;
  EXPECT_THAT(error, ::testing::StartsWith("53300")) << error;
  EXPECT_GE(waited, 450ms);
  EXPECT_LT(waited, 5s);
  EXPECT_TRUE(waiter.ok());

  started = SteadyClock::now();
  EXPECT_EQ(sqlstate_of([&] { waiter.exec_params("SELECT $1::int", {"1"}); }), "53300");
  EXPECT_GE(SteadyClock::now() - started, 450ms);
  EXPECT_TRUE(waiter.ok());
  EXPECT_EQ(holder.scalar("SELECT 'still mine'"), "still mine");  // the holder is unaffected
  holder.exec("COMMIT");

  EXPECT_EQ(waiter.scalar("SELECT pg_backend_pid()"), holder_pid);
  EXPECT_EQ(waiter.exec_params("SELECT $1::int + 1", {"41"}).scalar(), "42");
  waiter.exec("BEGIN");
  EXPECT_EQ(waiter.scalar("SELECT 'in a transaction'"), "in a transaction");
  waiter.exec("COMMIT");

  const std::string metrics = fetch_metrics(proxy);
  EXPECT_EQ(metric_value(metrics, "pgshift_pool_wait_timeouts_total",
                         {{"route", "main"}, {"side", "source"}}),
            2.0)
      << metric_lines(metrics, "pgshift_pool_wait_timeouts_total");
}

// ---- cancel ----

// Holds another client's query running for as long as the test needs, instead of a
// pg_sleep(N) that would have to outlast the test's steps: the test's own connection (straight
// to the source) holds an ACCESS EXCLUSIVE lock on table `gate` in an open transaction, so a
// query reading `gate` stays active, waiting on the lock, until release().
class LockGate {
 public:
  explicit LockGate(const PgCluster& cluster)
      : cluster_(cluster), conn_(cluster.connect({}, kDatabase)) {
    conn_.exec("CREATE TABLE IF NOT EXISTS gate (x int); GRANT SELECT ON gate TO " +
               std::string(kPoolUser));
    conn_.exec("BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE");
  }
  ~LockGate() {
    try {
      release();
    } catch (...) {
    }
  }
  LockGate(const LockGate&) = delete;
  LockGate& operator=(const LockGate&) = delete;

  static std::string query(const std::string& tag) {
    return "SELECT count(*) FROM gate /* " + tag + " */";
  }
  // Is `query` waiting at the gate right now (on the server `pid`, if given)? Asked on a
  // connection of its own: inside the gate's transaction pg_stat_activity is a snapshot.
  bool waiting(const std::string& query, const std::string& pid = {}) const {
    return cluster_
               .exec(
                   "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND "
                   "wait_event_type = 'Lock' AND query = " +
                       conn_.quote_literal(query) + (pid.empty() ? "" : " AND pid = " + pid),
                   kDatabase)
               .scalar() == "1";
  }
  void release() {
    if (released_) return;
    released_ = true;
    conn_.exec("COMMIT");
  }

 private:
  const PgCluster& cluster_;
  PgConnection conn_;
  bool released_ = false;
};

double cancel_requests(const PgshiftProcess& proxy, const std::string& result) {
  return metric_value(fetch_metrics(proxy), "pgshift_cancel_requests_total", {{"result", result}})
      .value_or(-1);
}

// The cancel of a running query reaches the server running it, not another client's: two
// clients run a query on the two servers, one is cancelled (57014 at once), the other is
// still running afterwards and then finishes normally.
TEST_F(TransactionPoolStateTest, CancelReachesTheServerRunningTheQuery) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 2});
  const std::string c = client_conninfo(proxy);
  PgConnection bystander(c);
  PgConnection target(c);
  LockGate gate(source());
  const std::string held = LockGate::query("bystander");
  std::string bystander_error = "not finished";
  std::thread waiter([&] { bystander_error = sqlstate_of([&] { bystander.exec(held); }); });
  const bool running =
      wait_until([&] { return gate.waiting(held); }, 10s, "the bystander's query to run upstream");
  const CancelOutcome cancel = cancel_pg_sleep(target, source(), "txn-pool-cancel");
  const bool still_running = gate.waiting(held);
  gate.release();
  waiter.join();
  ASSERT_TRUE(running);
  ASSERT_TRUE(cancel.started);
  EXPECT_EQ(cancel.sqlstate, "57014") << cancel.error;
  EXPECT_LT(cancel.elapsed, 2s) << cancel.elapsed.count() << " ms";
  EXPECT_TRUE(still_running) << "the bystander's query was cancelled";
  EXPECT_EQ(bystander_error, "") << "the bystander's query was cancelled";
  EXPECT_EQ(target.scalar("SELECT 'still usable'"), "still usable");

  // Inside a transaction too; the transaction is then aborted, as without pgshift.
  target.exec("BEGIN");
  const CancelOutcome in_txn = cancel_pg_sleep(target, source(), "txn-pool-cancel-in-txn");
  ASSERT_TRUE(in_txn.started);
  EXPECT_EQ(in_txn.sqlstate, "57014") << in_txn.error;
  EXPECT_EQ(sqlstate_of([&] { target.exec("SELECT 1"); }), "25P02");
  target.exec("ROLLBACK");
  EXPECT_EQ(target.scalar("SELECT 'after rollback'"), "after rollback");
}

// A client that is idle has no server: its cancel request must not reach the server it used
// last, which (pool of 1) is now running another client's query. pgshift drops the request
// (counted as unknown_key); the other query is still running once it has, and finishes.
TEST_F(TransactionPoolStateTest, CancelOfAnIdleClientCancelsNothing) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 1});
  const std::string c = client_conninfo(proxy);
  PgConnection idle(c);
  PgConnection busy(c);
  const std::string server_pid = idle.scalar("SELECT pg_backend_pid()");
  LockGate gate(source());
  const std::string held = LockGate::query("busy");
  std::string busy_error = "not finished";
  std::thread waiter([&] { busy_error = sqlstate_of([&] { busy.exec(held); }); });
  const bool running = wait_until([&] { return gate.waiting(held, server_pid); }, 10s,
                                  "the other client's query to run on the idle client's server");
  const double dropped = cancel_requests(proxy, "unknown_key");
  PGcancel* cancel = PQgetCancel(idle.native());
  char buffer[256];
  const int sent = PQcancel(cancel, buffer, sizeof buffer);
  PQfreeCancel(cancel);
  const bool handled = wait_until([&] { return cancel_requests(proxy, "unknown_key") > dropped; },
                                  10s, "pgshift to drop the idle client's cancel request");
  const bool still_running = gate.waiting(held, server_pid);
  gate.release();
  waiter.join();
  ASSERT_TRUE(running);
  EXPECT_EQ(sent, 1) << buffer;
  EXPECT_TRUE(handled) << metric_lines(fetch_metrics(proxy), "pgshift_cancel_requests_total");
  EXPECT_EQ(cancel_requests(proxy, "forwarded"), 0);
  EXPECT_TRUE(still_running) << "the idle client's cancel hit another client's query";
  EXPECT_EQ(busy_error, "") << "the idle client's cancel hit another client's query";
  EXPECT_EQ(idle.scalar("SELECT 'idle survived'"), "idle survived");
  EXPECT_EQ(busy.scalar("SELECT 'busy survived'"), "busy survived");
}

// ---- upstream restart ----

// pg_ctl restart -m fast under six psycopg2 clients running short transactions: only
// transactions caught by the restart fail (08xxx / 57P0x; none before it, none started after
// it, at most two per client), every client carries on over the SAME connection, and pgshift
// recovers by itself. The rules are checked by python/txn_restart_clients.py.
TEST_F(TransactionPoolStateTest, UpstreamRestartCostsOnlyInFlightTransactions) {
  source().exec(
      "DROP TABLE IF EXISTS restart_log; CREATE TABLE restart_log (worker int, n int);"
      "ALTER TABLE restart_log OWNER TO pooler",
      kDatabase);
  auto proxy = start_txn_proxy(source(), {.pool_size = 3, .query_wait_timeout_ms = 30000});
  ProcessOptions options;
  options.argv = {
      system_python().string(),
      (source_dir() / "tests" / "integration" / "python" / "txn_restart_clients.py").string(),
      client_conninfo(proxy), "6", "20"};
  options.stdin_pipe = true;
  options.merge_output = true;
  Process clients(std::move(options));
  ASSERT_TRUE(wait_until(
      [&] {
        return clients.stdout_text().find("ready\n") != std::string::npos || !clients.running();
      },
      60s, "the clients to be running transactions"))
      << clients.stdout_text();
  ASSERT_TRUE(clients.running()) << clients.stdout_text();

  clients.write_stdin("restarting\n");
  ASSERT_TRUE(wait_until(
      [&] {
        return clients.stdout_text().find("restarting: noted\n") != std::string::npos ||
               !clients.running();
      },
      10s, "the clients to note the restart"))
      << clients.stdout_text();
  source().restart(StopMode::fast);
  clients.write_stdin("restarted\n");
  const auto status = clients.wait_for(120s);
  ASSERT_TRUE(status.has_value()) << "clients did not finish:\n" << clients.stdout_text();
  EXPECT_TRUE(status->success()) << clients.stdout_text() << "\n--- pgshift ---\n"
                                 << tail_of(proxy.log());
  EXPECT_THAT(clients.stdout_text(), HasSubstr("restart clients: ok"));

  // The same pgshift serves new clients, and the pool is back to its size at most.
  EXPECT_TRUE(proxy.running());
  PgConnection fresh(client_conninfo(proxy));
  EXPECT_EQ(fresh.scalar("SELECT count(*) > 0 FROM restart_log"), "t");
  EXPECT_LE(pool_backends(source()), 3);
}

// A server terminated while idle in the pool (pg_terminate_backend: a FATAL, then the close)
// is dropped by the pool's idle watch when that happens: the client's next transaction gets
// another server and sees no error. (The hand-out itself no longer probes: docs/pooling.md.)
TEST_F(TransactionPoolStateTest, ServerTerminatedWhileIdleInThePoolIsNeverHandedOut) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 2});
  PgConnection client(client_conninfo(proxy));
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string pid = client.scalar("SELECT pg_backend_pid()");
    source().exec("SELECT pg_terminate_backend(" + pid + ")");
    ASSERT_TRUE(wait_until(
        [&] {
          return source()
                     .exec("SELECT count(*) FROM pg_stat_activity WHERE pid = " + pid)
                     .scalar() == "0";
        },
        10s, "the terminated backend to exit"));
    for (int i = 0; i < 3; ++i) {
      EXPECT_NE(client.scalar("SELECT pg_backend_pid()"), pid) << tail_of(proxy.log());
    }
  }
}

// ---- hot and idle sessions ----

// A client that works keeps its read buffers (pgshift_client_connections_hot counts it); one
// that has been quiet for a sweep period (one to two seconds) gives them back, and then waits
// without them. What it had is still there afterwards: its named prepared statements, and a
// pinned client's server and session state. A client that never sent anything is never hot.
TEST_F(TransactionPoolStateTest, QuietClientsLetGoOfTheirBuffersAndKeepWorking) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 2});
  const std::string c = client_conninfo(proxy);
  auto hot = [&] {
    return metric_value(fetch_metrics(proxy), "pgshift_client_connections_hot").value_or(-1);
  };
  PgConnection silent(c);  // logs in, then sends nothing until the end
  PgConnection prepared_client(c);
  PgConnection pinned(c);
  prepare(prepared_client, "plus_one", "SELECT $1::int + 1", 1);
  EXPECT_EQ(exec_prepared(prepared_client, "plus_one", {"41"}), "42");
  pinned.exec("SET application_name = 'pinned-by-test'");
  const std::string pid = pinned.scalar("SELECT pg_backend_pid()");
  // Hot right after it worked (each try works again first, so a slow machine cannot miss it).
  EXPECT_TRUE(wait_until(
      [&] {
        pinned.exec("SELECT 1");
        return hot() >= 1;
      },
      10s, "a working client to be hot"));

  ASSERT_TRUE(wait_until([&] { return hot() == 0; }, 10s, "quiet clients to cool down"))
      << metric_lines(fetch_metrics(proxy), "pgshift_client_connections_hot");
  EXPECT_EQ(exec_prepared(prepared_client, "plus_one", {"1"}), "2");
  EXPECT_EQ(pinned.scalar("SHOW application_name"), "pinned-by-test");
  EXPECT_EQ(pinned.scalar("SELECT pg_backend_pid()"), pid);
  EXPECT_EQ(silent.scalar("SELECT 7"), "7");

  // Cooled down a second time, the same clients still work.
  ASSERT_TRUE(wait_until([&] { return hot() == 0; }, 10s, "quiet clients to cool down again"));
  EXPECT_EQ(exec_prepared(prepared_client, "plus_one", {"2"}), "3");
  EXPECT_EQ(pinned.scalar("SELECT pg_backend_pid()"), pid);
  EXPECT_EQ(silent.scalar("SELECT 8"), "8");
}

}  // namespace
}  // namespace pgshift::test
