// Transaction pooling through the real pgshift binary against a real PostgreSQL 15: many
// clients over a few servers with pgbench in all three query modes, protocol-level prepared
// statements that follow their client from server to server (libpq and node-postgres), the
// per-server prepared statement cache, and transactions that never share or switch servers.
// Session state and pinning, query_wait_timeout, cancel and an upstream restart are in
// transaction_pool_state_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include "tests/integration/transaction_pool_helpers.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class TransactionPoolTest : public TxnPoolFixture {};

// Runs pgbench and returns its stdout and stderr; fails the test on a non-zero exit.
std::string run_pgbench(const std::string& conninfo, const std::vector<std::string>& args,
                        std::chrono::milliseconds timeout) {
  ProcessOptions options;
  options.argv = {pg_tool("pgbench").string()};
  options.argv.insert(options.argv.end(), args.begin(), args.end());
  options.argv.push_back(conninfo);
  options.unset_env = libpq_environment_variables();
  const CommandResult result = run_command(std::move(options), timeout);
  EXPECT_TRUE(result.success()) << result.describe();
  return result.out + result.err;
}

// 200 pgbench clients over 10 servers: every transaction succeeds in every query mode
// (prepared needs pgshift to map each client's P0_n statements onto whichever server it gets),
// and PostgreSQL never sees more than 10 backends from pgshift.
TEST_F(TransactionPoolTest, PgbenchTwoHundredClientsOverTenServers) {
  // Initialised directly (not under test), scale 2.
  ProcessOptions init;
  init.argv = {pg_tool("pgbench").string(),
               "-i",
               "-s",
               "2",
               "-q",
               source().conninfo(kPoolUser, std::nullopt, kDatabase)};
  init.unset_env = libpq_environment_variables();
  const CommandResult initialised = run_command(std::move(init), 120s);
  ASSERT_TRUE(initialised.success()) << initialised.describe();

  auto proxy = start_txn_proxy(source(), {.pool_size = 10, .threads = 0});
  const std::string c = client_conninfo(proxy);
  const std::regex processed(R"(number of transactions actually processed: (\d+)/(\d+))");
  const std::regex failed(R"(number of failed transactions: (\d+))");

  BackendSampler sampler(source());
  struct Run {
    std::string mode;
    bool select_only;
    int transactions;  // per client
  };
  for (const Run& run : {Run{"prepared", true, 50}, Run{"prepared", false, 50},
                         Run{"extended", false, 20}, Run{"simple", false, 20}}) {
    SCOPED_TRACE("pgbench -M " + run.mode + (run.select_only ? " -S" : ""));
    std::vector<std::string> args = {
        "-n", "-M", run.mode, "-c", "200", "-j", "4", "-t", std::to_string(run.transactions)};
    if (run.select_only) args.push_back("-S");
    const std::string out = run_pgbench(c, args, 120s);
    EXPECT_THAT(out, HasSubstr("query mode: " + run.mode));
    EXPECT_THAT(out, HasSubstr("number of clients: 200"));
    const std::string expected = std::to_string(200 * run.transactions);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(out, m, processed)) << out;
    EXPECT_EQ(m[1], expected) << out;
    EXPECT_EQ(m[2], expected) << out;
    ASSERT_TRUE(std::regex_search(out, m, failed)) << out;
    EXPECT_EQ(m[1], "0") << out;
    EXPECT_THAT(out, ::testing::Not(HasSubstr("error"))) << out;
  }
  sampler.stop();
  EXPECT_EQ(sampler.error(), "");
  EXPECT_GT(sampler.samples(), 10);
  EXPECT_LE(sampler.max(), 10) << "more server backends than pool.size";
  EXPECT_GE(sampler.max(), 2) << "200 clients never used more than one server";
  // pgbench's TPC-B transactions all reached the database.
  EXPECT_EQ(source().exec("SELECT count(*) FROM pgbench_history", kDatabase).scalar(),
            std::to_string(200 * (50 + 20 + 20)));
}

// Forces a client onto the other server after each PREPARE: two blocking clients take both
// servers of a pool of 2, the one that did NOT run the client's last statement is released, so
// the client's next Execute can only run there, where its statement was never parsed.
TEST_F(TransactionPoolTest, PreparedStatementsFollowTheClientAcrossServers) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 2, .query_wait_timeout_ms = 5000});
  const std::string c = client_conninfo(proxy);
  PgConnection client(c);
  PgConnection b(c);
  PgConnection d(c);
  std::set<std::string> pids;
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string name = "who_" + std::to_string(round);
    prepare(client, name, "SELECT pg_backend_pid()::text || ':' || ($1::int * 2)::text", 1);
    const std::string first = exec_prepared(client, name, {std::to_string(round)});
    const std::string suffix = ":" + std::to_string(round * 2);
    ASSERT_THAT(first, ::testing::EndsWith(suffix));
    const std::string first_pid = first.substr(0, first.size() - suffix.size());

    b.exec("BEGIN");
    const std::string b_pid = b.scalar("SELECT pg_backend_pid()");
    d.exec("BEGIN");
    const std::string d_pid = d.scalar("SELECT pg_backend_pid()");
    ASSERT_NE(b_pid, d_pid);
    ASSERT_TRUE(first_pid == b_pid || first_pid == d_pid)
        << first_pid << " is neither " << b_pid << " nor " << d_pid;
    PgConnection& elsewhere = first_pid == b_pid ? d : b;
    const std::string free_pid = first_pid == b_pid ? d_pid : b_pid;
    elsewhere.exec("COMMIT");

    const std::string second = exec_prepared(client, name, {std::to_string(round)});
    EXPECT_EQ(second, free_pid + suffix) << tail_of(proxy.log());
    (first_pid == b_pid ? b : d).exec("COMMIT");
    pids.insert(first_pid);
    pids.insert(free_pid);
  }
  EXPECT_EQ(pids.size(), 2u);

  // Now at random: four clients keep both servers busy while the client runs its statements
  // (all five, which exist on either server or neither) 200 times.
  BusyClients busy(c, 4);
  ASSERT_TRUE(wait_until([&] { return busy.done() > 0; }, 10s, "competing transactions"));
  std::set<std::string> seen;
  try {
    for (int i = 0; i < 200; ++i) {
      const std::string value = exec_prepared(client, "who_" + std::to_string(i % 5), {"21"});
      seen.insert(value);
      if (!value.ends_with(":42")) {
        ADD_FAILURE() << "execution " << i << " returned " << value;
        break;
      }
    }
  } catch (const PgError& e) {
    ADD_FAILURE() << e.what() << " (" << e.sqlstate() << ")\n" << tail_of(proxy.log());
  }
  busy.stop();
  EXPECT_THAT(busy.errors(), ::testing::IsEmpty());
  EXPECT_LE(seen.size(), 2u);  // only two servers exist
}

// With pool size 1 both clients share the one server: the same statement name from two clients
// must not collide there (PostgreSQL would say 42P05), and each gets its own statement.
TEST_F(TransactionPoolTest, SameStatementNameFromTwoClientsDoesNotCollide) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 1, .query_wait_timeout_ms = 5000});
  PgConnection a(client_conninfo(proxy));
  PgConnection b(client_conninfo(proxy));
  prepare(a, "s", "SELECT 'from a:' || $1::text", 1);
  prepare(b, "s", "SELECT 'from b:' || $1::text", 1);
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(exec_prepared(a, "s", {std::to_string(i)}), "from a:" + std::to_string(i));
    EXPECT_EQ(exec_prepared(b, "s", {std::to_string(i)}), "from b:" + std::to_string(i));
  }
  EXPECT_EQ(a.scalar("SELECT pg_backend_pid()"), b.scalar("SELECT pg_backend_pid()"));
  // Preparing a name the client already has is still the client's error, as without pgshift,
  // and the statement it has stays as it was.
  EXPECT_EQ(sqlstate_of([&] { prepare(a, "s", "SELECT 2", 0); }), "42P05");
  std::string value;
  EXPECT_EQ(sqlstate_of([&] { value = exec_prepared(a, "s", {"x"}); }), "");
  EXPECT_EQ(value, "from a:x");
  // An unknown name is 26000, and the client can go on.
  EXPECT_EQ(sqlstate_of([&] { exec_prepared(b, "never_prepared", {}); }), "26000");
  EXPECT_EQ(exec_prepared(b, "s", {"y"}), "from b:y");
}

// prepared_statement_cache_size 2: the server keeps at most two of the client's six
// statements; pgshift closes the least recently used and parses again when needed.
TEST_F(TransactionPoolTest, PreparedStatementCacheIsBoundedPerServer) {
  auto proxy = start_txn_proxy(
      source(),
      {.pool_size = 1, .query_wait_timeout_ms = 5000, .prepared_statement_cache_size = 2});
  PgConnection client(client_conninfo(proxy));
  for (int i = 0; i < 6; ++i) {
    prepare(client, "q" + std::to_string(i), "SELECT $1::int + " + std::to_string(i * 100), 1);
  }
  for (int pass = 0; pass < 3; ++pass) {
    for (int i = 0; i < 6; ++i) {
      EXPECT_EQ(exec_prepared(client, "q" + std::to_string(i), {std::to_string(pass)}),
                std::to_string(i * 100 + pass));
    }
  }
  // Seen from the one server: no more protocol-level statements than the cache allows.
  const int on_server =
      std::stoi(client.scalar("SELECT count(*) FROM pg_prepared_statements WHERE NOT from_sql"));
  EXPECT_LE(on_server, 2);
  EXPECT_GE(on_server, 1);
}

// node-postgres named statements ({name, text, values}): pg prepares each name once per client
// connection and then only binds it; 20 such connections share 3 servers.
TEST_F(TransactionPoolTest, NodePostgresNamedStatementsOverThreeServers) {
  if (run_command({"sh", "-c", "command -v node"}, 10s).exit_code != 0) {
    GTEST_SKIP() << "node is not installed (scripts/install-deps.sh installs nodejs and npm); "
                    "the node-postgres test did not run";
  }
  // The pg package, installed once per build tree next to this binary.
  const std::filesystem::path exe = std::filesystem::canonical("/proc/self/exe");
  const std::filesystem::path modules = exe.parent_path() / "node-deps";
  if (!std::filesystem::exists(modules / "node_modules" / "pg" / "package.json")) {
    std::filesystem::create_directories(modules);
    const CommandResult npm =
        run_command({"npm", "install", "--prefix", modules.string(), "--no-audit", "--no-fund",
                     "--no-package-lock", "--loglevel=error", "pg@8"},
                    300s);
    ASSERT_TRUE(npm.success()) << "npm install pg failed:\n" << npm.describe();
  }

  auto proxy = start_txn_proxy(source(), {.pool_size = 3});
  ProcessOptions options;
  options.argv = {
      "node", (source_dir() / "tests" / "integration" / "node" / "named_statements.js").string(),
      "postgresql://" + std::string(kClientUser) + ":" + kClientPassword +
          "@127.0.0.1:" + std::to_string(proxy.port()) + "/" + kDatabase,
      "20", "30"};
  options.env["NODE_PATH"] = (modules / "node_modules").string();
  options.unset_env = libpq_environment_variables();
  BackendSampler sampler(source());
  const CommandResult result = run_command(std::move(options), 120s);
  sampler.stop();
  ASSERT_TRUE(result.success()) << result.describe() << "\n" << tail_of(proxy.log());
  EXPECT_THAT(result.out, HasSubstr("named statements: ok"));
  std::smatch m;
  const std::regex summary(R"(queries=(\d+) distinct_backends=(\d+))");
  ASSERT_TRUE(std::regex_search(result.out, m, summary)) << result.out;
  EXPECT_EQ(m[1], std::to_string(20 * 30 * 3));
  EXPECT_LE(sampler.max(), 3);
  // Nothing in this workload makes a server connection unusable: the three servers serve the
  // whole run, none is closed and replaced.
  const std::string metrics = fetch_metrics(proxy);
  EXPECT_LE(std::stoi(m[2]), 3) << "distinct server backends over the run\n"
                                << metric_lines(metrics, "pgshift_server_")
                                << metric_lines(metrics, "pgshift_errors_total")
                                << fetch_admin(proxy, "/v1/pools", false)
                                << "\nserver connections closed:\n"
                                << tail_of(metric_lines(source().log(),
                                                        "pooler@txn LOG:  disconnection"));
}

// One libpq pipeline carrying 20 rounds of [BEGIN, SELECT] Sync [SELECT] Sync [SELECT, COMMIT]
// Sync [SELECT $1] Sync, sent before any result is read, while other clients compete for the
// pool of 2: a server is given back only at ReadyForQuery 'I' with nothing outstanding, so
// each transaction keeps one backend and one transaction id across its Syncs, and every
// result comes back, in order.
TEST_F(TransactionPoolTest, PipelinedTransactionsKeepTheirServerAcrossSyncs) {
  auto proxy = start_txn_proxy(source(), {.pool_size = 2});
  const std::string c = client_conninfo(proxy);
  BusyClients busy(c, 3);
  ASSERT_TRUE(wait_until([&] { return busy.done() > 0; }, 10s, "competing transactions"));
  PgConnection client(c);
  PGconn* conn = client.native();
  ASSERT_EQ(PQenterPipelineMode(conn), 1) << PQerrorMessage(conn);
  constexpr int kRounds = 20;
  const char* who = "SELECT pg_backend_pid()::text || '/' || pg_current_xact_id()::text";
  std::vector<char> expected;  // 'q': a query's result, 's': a Sync's
  auto send = [&](const char* sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    ASSERT_EQ(PQsendQueryParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(),
                                nullptr, nullptr, 0),
              1)
        << PQerrorMessage(conn);
    expected.push_back('q');
  };
  auto sync = [&] {
    ASSERT_EQ(PQpipelineSync(conn), 1) << PQerrorMessage(conn);
    expected.push_back('s');
  };
  for (int round = 0; round < kRounds; ++round) {
    send("BEGIN");
    send(who);
    sync();
    send(who);
    sync();
    send(who);
    send("COMMIT");
    sync();
    send("SELECT $1::int * 3", {std::to_string(round)});
    sync();
  }
  std::vector<std::string> values;  // first value of every row-returning result, in order
  for (std::size_t i = 0; i < expected.size(); ++i) {
    PGresult* r = PQgetResult(conn);
    ASSERT_NE(r, nullptr) << "result " << i << ": " << PQerrorMessage(conn);
    const ExecStatusType status = PQresultStatus(r);
    if (expected[i] == 's') {
      EXPECT_EQ(status, PGRES_PIPELINE_SYNC) << "result " << i;
    } else {
      EXPECT_TRUE(status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK)
          << "result " << i << ": " << PQresStatus(status) << " " << PQresultErrorMessage(r);
      if (status == PGRES_TUPLES_OK && PQntuples(r) == 1) values.push_back(PQgetvalue(r, 0, 0));
    }
    PQclear(r);
    if (expected[i] == 'q') {
      PGresult* end = PQgetResult(conn);  // each query's results end with a null
      EXPECT_EQ(end, nullptr);
      if (end != nullptr) PQclear(end);
    }
    if (HasFailure()) break;
  }
  EXPECT_EQ(PQexitPipelineMode(conn), 1) << PQerrorMessage(conn);
  busy.stop();
  EXPECT_THAT(busy.errors(), ::testing::IsEmpty());
  ASSERT_EQ(values.size(), static_cast<std::size_t>(kRounds * 4)) << tail_of(proxy.log());
  std::set<std::string> xids;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const std::string& first = values[round * 4];
    EXPECT_EQ(values[round * 4 + 1], first);
    EXPECT_EQ(values[round * 4 + 2], first);
    EXPECT_EQ(values[round * 4 + 3], std::to_string(round * 3));
    EXPECT_TRUE(xids.insert(first).second) << first << " seen in two transactions";
  }
  EXPECT_EQ(client.scalar("SELECT 'after the pipeline'"), "after the pipeline");
}

// Explicit transactions through a small pool never change server or share one: every
// statement of a transaction sees the same backend and the same transaction id, no two
// transactions ever see the same transaction id, and a failed transaction stays on its server
// until ROLLBACK (25P02, not a fresh server that would accept the next statement).
TEST_F(TransactionPoolTest, TransactionsNeverSwitchOrShareServers) {
  source().exec(
      "DROP TABLE IF EXISTS txn_steps; CREATE TABLE txn_steps (client int, txn int, step int);"
      "ALTER TABLE txn_steps OWNER TO pooler",
      kDatabase);
  auto proxy = start_txn_proxy(source(), {.pool_size = 3, .threads = 0});
  const std::string c = client_conninfo(proxy);
  constexpr int kClients = 12;
  constexpr int kTransactions = 40;
  std::mutex mutex;
  std::vector<std::string> failures;
  std::map<std::string, std::string> xid_owner;  // xid -> "client/txn"
  std::set<std::string> pids;
  BackendSampler sampler(source());
  std::vector<std::thread> clients;
  for (int id = 0; id < kClients; ++id) {
    clients.emplace_back([&, id] {
      auto fail = [&](const std::string& what) {
        std::lock_guard lock(mutex);
        failures.push_back("client " + std::to_string(id) + ": " + what);
      };
      try {
        PgConnection conn(c);
        for (int t = 0; t < kTransactions; ++t) {
          const std::string tag = std::to_string(id) + "/" + std::to_string(t);
          conn.exec("BEGIN");
          std::set<std::string> txn_pids;
          std::set<std::string> txn_xids;
          for (int step = 0; step < 4; ++step) {
            const std::string id_s = std::to_string(id);
            const std::string t_s = std::to_string(t);
            const std::string step_s = std::to_string(step);
            // The rows this transaction inserted so far (uncommitted, so visible only inside
            // the same transaction), its backend and its transaction id. The simple and the
            // extended protocol alternate inside one transaction.
            const std::string returning =
                " RETURNING pg_backend_pid(), pg_current_xact_id(), (SELECT count(*) FROM "
                "txn_steps WHERE client = ";
            const QueryResult r =
                step % 2 == 0
                    ? conn.exec("INSERT INTO txn_steps VALUES (" + id_s + ", " + t_s + ", " +
                                step_s + ")" + returning + id_s + " AND txn = " + t_s + ")")
                    : conn.exec_params("INSERT INTO txn_steps VALUES ($1, $2, $3)" + returning +
                                           "$1 AND txn = $2)",
                                       {id_s, t_s, step_s});
            txn_pids.insert(r.at(0, 0));
            txn_xids.insert(r.at(0, 1));
            if (r.at(0, 2) != step_s) {
              fail(tag + " step " + step_s + " saw " + r.at(0, 2) +
                   " earlier rows of its own transaction");
            }
          }
          if (t % 5 == 4) {  // a failed transaction stays where it is until ROLLBACK
            const std::string division = sqlstate_of([&] { conn.exec("SELECT 1/0"); });
            const std::string after = sqlstate_of([&] { conn.exec("SELECT pg_backend_pid()"); });
            if (division != "22012" || after != "25P02") {
              fail(tag + ": after 1/0 got " + division + " then " + after +
                   " (expected 22012 then 25P02)");
            }
            conn.exec("ROLLBACK");
          } else {
            conn.exec("COMMIT");
          }
          if (txn_pids.size() != 1 || txn_xids.size() != 1) {
            fail(tag + " ran on " + std::to_string(txn_pids.size()) + " backends with " +
                 std::to_string(txn_xids.size()) + " transaction ids");
          }
          std::lock_guard lock(mutex);
          pids.insert(txn_pids.begin(), txn_pids.end());
          for (const auto& xid : txn_xids) {
            const auto [it, inserted] = xid_owner.emplace(xid, tag);
            if (!inserted && it->second != tag) {
              failures.push_back("transaction id " + xid + " seen by " + it->second + " and " +
                                 tag);
            }
          }
        }
      } catch (const std::exception& e) {
        fail(e.what());
      }
    });
  }
  for (auto& t : clients) t.join();
  sampler.stop();
  EXPECT_THAT(failures, ::testing::IsEmpty()) << tail_of(proxy.log());
  // At most 3 at a time. (Over time there can be more: with two I/O threads, a thread whose
  // clients wait closes an idle server of the other thread's pool to open its own.)
  EXPECT_LE(sampler.max(), 3) << pids.size() << " distinct backends";
  // Committed: 4 of every 5 transactions, 4 rows each.
  EXPECT_EQ(source().exec("SELECT count(*) FROM txn_steps", kDatabase).scalar(),
            std::to_string(kClients * (kTransactions - kTransactions / 5) * 4));
}

}  // namespace
}  // namespace pgshift::test
