// The read split end to end (issue 4), part 1: which side answers. Real clients (psycopg2,
// libpq, a raw startup packet, psql) read through pgshift from a source and a target whose
// `marker` table says which side answered: the share at 30 % over 10,000 user ids and the
// exact side of every id (routing::bucket, docs/routing.md), where the routing key comes
// from, which statements are split, that writes only ever reach the source, and read your
// writes. Part 2 (split_routing_ops_test.cpp): live percent changes under pgbench, a target
// outage, admin API errors. Fixture: split_routing_support.hpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <sstream>

#include "tests/integration/helpers.hpp"
#include "tests/integration/split_routing_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

class SplitRoutingTest : public ::testing::Test {
 protected:
  void SetUp() override { split_servers().reset(); }
};

// Runs python/split_reads.py: key -> the sides that answered it, in order.
std::map<int, std::vector<std::string>> keyed_reads(const PgshiftProcess& proxy, int first,
                                                    int last, int step, int repeat,
                                                    int connections) {
  const auto script = source_dir() / "tests" / "integration" / "python" / "split_reads.py";
  const CommandResult r =
      run_command({system_python().string(), script.string(), client_conninfo(proxy),
                   std::to_string(first), std::to_string(last), std::to_string(step),
                   std::to_string(repeat), std::to_string(connections)},
                  120s);
  EXPECT_TRUE(r.success()) << r.describe() << "\npgshift log:\n" << proxy.log();
  std::map<int, std::vector<std::string>> sides;
  std::istringstream in(r.out);
  int key = 0;
  for (std::string side; in >> key >> side;) sides[key].push_back(side);
  return sides;
}

// Logs in over a raw socket (trust) with extra startup parameters, runs `query` with the
// simple protocol and returns the first column of the first row ("<error: ...>" otherwise).
std::string raw_query(const PgshiftProcess& proxy,
                      std::vector<std::pair<std::string, std::string>> params,
                      const std::string& query) {
  RawSocket socket = RawSocket::connect(proxy.host(), proxy.port());
  params.insert(params.begin(), {{"user", "app"}, {"database", "postgres"}});
  std::string bytes;
  // Reads until ReadyForQuery; returns the messages after `from`.
  auto until_ready = [&](std::size_t from) {
    const auto deadline = SteadyClock::now() + 10s;
    for (;;) {
      auto messages = parse_backend_messages(bytes);
      if (std::any_of(messages.begin() + static_cast<std::ptrdiff_t>(from), messages.end(),
                      [](const BackendMessage& m) { return m.type == 'Z'; }) ||
          socket.closed() || SteadyClock::now() >= deadline) {
        return messages;
      }
      bytes += socket.receive(1, 100ms);
    }
  };
  if (!socket.send(startup_packet(params))) return "<error: could not send the startup packet>";
  const auto login = until_ready(0);
  for (const BackendMessage& m : login) {
    if (m.type == 'E') return "<error at login: " + error_fields(m.body)['M'] + ">";
  }
  const std::size_t login_messages = login.size();
  if (!socket.send(frontend_message('Q', query + '\0'))) return "<error: closed after login>";
  for (const BackendMessage& m : until_ready(login_messages)) {
    if (m.type == 'E') return "<error: " + error_fields(m.body)['M'] + ">";
    if (m.type == 'D' && m.body.size() >= 6) {
      const std::uint32_t length = read_be32(m.body, 2);  // int16 column count, int32 length
      return m.body.substr(6, length);
    }
  }
  return "<error: no row>";
}

// (a) 10,000 user ids at 30 %: the target answers 30 +- 2 % of them, every id lands exactly
// where bucket(id) < 3000 says, and a key keeps its side when read again on another
// connection.
TEST_F(SplitRoutingTest, ThirtyPercentOfTenThousandUsersReadFromTheTarget) {
  PgshiftProcess proxy(split_proxy_options());
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "30"));
  const boost::json::value view = route_view(proxy);
  ASSERT_TRUE(view.is_object()) << proxy.log();
  EXPECT_EQ(view.at("read_percent_bp").to_number<int>(), 3000) << view;

  const auto first = keyed_reads(proxy, 1, 10000, 1, 1, 4);
  ASSERT_EQ(first.size(), 10000u);
  int on_target = 0;
  int misplaced = 0;
  std::string examples;
  for (const auto& [key, sides] : first) {
    ASSERT_EQ(sides.size(), 1u) << key;
    on_target += sides[0] == "target" ? 1 : 0;
    const std::string expected = expected_side(std::to_string(key), 3000);
    if (sides[0] != expected && ++misplaced <= 10) {
      examples += " user_id=" + std::to_string(key) + " answered by " + sides[0] + ", expected " +
                  expected + ";";
    }
  }
  EXPECT_NEAR(on_target / 100.0, 30.0, 2.0) << on_target << " of 10000 reads on the target";
  EXPECT_EQ(misplaced, 0) << "reads not on the side bucket(key) < 3000 says:" << examples
                          << "\npgshift log:\n"
                          << proxy.log();

  // Every 10th id three more times, each time over another connection than before.
  const auto again = keyed_reads(proxy, 1, 10000, 10, 3, 4);
  ASSERT_EQ(again.size(), 1000u);
  int moved = 0;
  int again_on_target = 0;
  for (const auto& [key, sides] : again) {
    ASSERT_EQ(sides.size(), 3u) << key;
    for (const std::string& side : sides) {
      moved += side != first.at(key)[0] ? 1 : 0;
      again_on_target += side == "target" ? 1 : 0;
    }
  }
  EXPECT_EQ(moved, 0) << "reads of a key answered by another side than its first read";

  // The metrics agree with what the clients saw: one split decision per read.
  const std::string metrics = fetch_metrics(proxy);
  const int reads = 10000 + 3000;
  EXPECT_EQ(metric_sum(metrics, "pgshift_split_decisions_total",
                       {R"(route="main")", R"(decision="target")"}),
            on_target + again_on_target)
      << metrics;
  EXPECT_EQ(metric_sum(metrics, "pgshift_split_decisions_total",
                       {R"(route="main")", R"(decision="source")"}),
            reads - on_target - again_on_target)
      << metrics;
}

// The routing key comes from, in order: the statement's comment, SET pgshift.routing_key,
// the startup packet (a parameter, or -c in options); otherwise the connection is the key.
TEST_F(SplitRoutingTest, RoutingKeyFromCommentSettingStartupPacketOrConnection) {
  PgshiftProcess proxy(split_proxy_options({.client_auth = "trust"}));  // trust: raw logins
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "30"));
  const std::string low = key_in_buckets("user-", 0, 2000);       // target at 30 %
  const std::string high = key_in_buckets("user-", 5000, 10000);  // source at 30 %

  PgConnection conn(client_conninfo(proxy));
  EXPECT_EQ(side_of(conn, low), "target");
  EXPECT_EQ(side_of(conn, high), "source");

  conn.exec("SET pgshift.routing_key = '" + low + "'");
  EXPECT_EQ(side_of(conn, ""), "target");
  EXPECT_EQ(side_of(conn, high), "source") << "the comment wins over the session setting";
  conn.exec("SET pgshift.routing_key = '" + high + "'");
  EXPECT_EQ(side_of(conn, ""), "source");
  EXPECT_EQ(side_of(conn, low), "target");

  for (const auto& [key, side] : {std::pair{low, "target"}, std::pair{high, "source"}}) {
    PgConnection with_options(
        client_conninfo(proxy, "options=" + conninfo_quote("-c pgshift.routing_key=" + key)));
    EXPECT_EQ(side_of(with_options, ""), side) << "options=-c pgshift.routing_key=" << key;
    EXPECT_EQ(raw_query(proxy, {{"pgshift.routing_key", key}}, "SELECT side FROM marker"), side)
        << "startup parameter pgshift.routing_key=" << key;
  }

  // No key: each connection is split on its own, and keeps its side.
  std::map<std::string, int> connections_per_side;
  for (int i = 0; i < 40; ++i) {
    PgConnection c(client_conninfo(proxy));
    const std::string side = side_of(c, "");
    for (int j = 0; j < 4; ++j) EXPECT_EQ(side_of(c, ""), side) << "connection " << i;
    ++connections_per_side[side];
  }
  EXPECT_GT(connections_per_side["target"], 0) << "40 unkeyed connections, none on the target";
  EXPECT_GT(connections_per_side["source"], 0) << "40 unkeyed connections, none on the source";
}

// At 100 % only provably read-only work goes to the target: autocommit reads in both
// protocols and READ ONLY transactions; read-write transactions, locking reads, reads that
// call unknown functions and sessions that changed a setting stay on the source.
TEST_F(SplitRoutingTest, OnlyProvablyReadOnlyWorkIsSplit) {
  PgshiftProcess proxy(split_proxy_options());
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "100"));
  PgConnection conn(client_conninfo(proxy));
  const std::string q = "SELECT side FROM marker /* user_id='k1' */";

  EXPECT_EQ(conn.scalar(q), "target") << "simple protocol";
  EXPECT_EQ(conn.exec_params(q, {}).scalar(), "target") << "extended protocol";
  EXPECT_EQ(
      conn.exec_params("SELECT side FROM marker WHERE length($1) > 0 /* user_id='k1' */", {"x"})
          .scalar(),
      "target")
      << "extended protocol with a parameter";

  conn.exec("BEGIN READ ONLY");
  EXPECT_EQ(conn.scalar(q), "target");
  EXPECT_EQ(conn.scalar("SELECT side FROM marker"), "target");
  conn.exec("COMMIT");
  conn.exec("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");
  EXPECT_EQ(conn.scalar(q), "target");
  conn.exec("ROLLBACK");

  conn.exec("BEGIN");
  EXPECT_EQ(conn.scalar(q), "source") << "a read-write transaction runs on the source";
  conn.exec("COMMIT");
  EXPECT_EQ(conn.scalar("SELECT side FROM marker FOR SHARE /* user_id='k1' */"), "source");
  EXPECT_EQ(conn.scalar("SELECT side FROM marker WHERE txid_current() > 0 /* user_id='k1' */"),
            "source")
      << "txid_current() is not on the allow-list";
  // Those count as writes of k1 (read your writes may hold it now), so ask with another key.
  EXPECT_EQ(side_of(conn, "k2"), "target") << "autocommit reads are split again after those";

  PgConnection pinned(client_conninfo(proxy));
  pinned.exec("SET search_path = public, pg_catalog");
  EXPECT_EQ(side_of(pinned, "k1"), "source") << "a session with its own settings is pinned";
}

// (b) Writes go to the source only, whatever form they take, while every read of the same
// keys goes to the target (100 %).
TEST_F(SplitRoutingTest, EveryWriteLandsOnTheSourceOnly) {
  PgshiftProcess proxy(split_proxy_options());
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "100"));
  PgConnection conn(client_conninfo(proxy));
  ASSERT_EQ(side_of(conn, "w-1"), "target") << "reads of these keys are split";

  std::int64_t expected = 0;
  for (int i = 1; i <= 400; ++i, ++expected) {
    const std::string key = "w-" + std::to_string(i);
    conn.exec("INSERT INTO events (k, n) VALUES ('" + key + "', " + std::to_string(i) +
              ") /* user_id='" + key + "' */");
  }
  for (int i = 1; i <= 50; ++i, ++expected) {
    const std::string key = "x-" + std::to_string(i);
    conn.exec_params("INSERT INTO events (k, n) VALUES ($1, $2) /* user_id='" + key + "' */",
                     {key, std::to_string(i)});
  }
  conn.exec("UPDATE events SET n = n + 1000 WHERE k LIKE 'w-1%' /* user_id='w-1' */");
  EXPECT_EQ(conn.scalar("WITH w AS (INSERT INTO events (k) VALUES ('cte') RETURNING k) "
                        "SELECT k FROM w /* user_id='cte' */"),
            "cte");
  conn.exec("SELECT 1; INSERT INTO events (k) VALUES ('multi') /* user_id='multi' */");
  conn.exec("SET pgshift.routing_key = 'tx'");
  conn.exec("BEGIN");
  conn.exec("INSERT INTO events (k) VALUES ('tx')");
  conn.exec("COMMIT");
  conn.exec("RESET pgshift.routing_key");
  expected += 3;
  run_psql(client_conninfo(proxy), "\\copy events (k) FROM PROGRAM 'seq 1 20'");
  expected += 20;

  conn.exec("BEGIN READ ONLY");
  try {
    conn.exec("INSERT INTO events (k) VALUES ('read-only') /* user_id='w-1' */");
    ADD_FAILURE() << "an INSERT in a READ ONLY transaction succeeded";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), "25006") << e.what();
  }
  conn.exec("ROLLBACK");

  EXPECT_EQ(events_on(split_servers().source), expected) << proxy.log();
  EXPECT_EQ(events_on(split_servers().target), 0) << "writes reached the target";
  EXPECT_EQ(events_on(split_servers().source, "n >= 1000"), 111);  // w-1, w-1x, w-1xx
  EXPECT_EQ(events_on(split_servers().source, "k = 'read-only'"), 0);
  // A key that wrote reads from the source for the read-your-writes window; one that did
  // not is still split.
  EXPECT_EQ(side_of(conn, "reader-1"), "target") << "reads are still split after the writes";
}

// (d) Read your writes: a key that wrote reads from the source (its new row is there, not on
// the target) on any connection until the window has passed; other keys stay on the target.
TEST_F(SplitRoutingTest, ReadYourWritesKeepsAWritersReadsOnTheSource) {
  constexpr auto window = 3000ms;
  PgshiftProcess proxy(
      split_proxy_options({.read_your_writes_window_ms = static_cast<int>(window.count())}));
  ASSERT_TRUE(wait_target_healthy(proxy)) << proxy.log();
  ASSERT_TRUE(set_read_percent(proxy, "100"));
  PgConnection writer(client_conninfo(proxy));
  PgConnection reader(client_conninfo(proxy));
  const std::string row_query = "SELECT count(*) FROM events WHERE k = 'ryw' /* user_id='ryw' */";
  ASSERT_EQ(side_of(reader, "ryw"), "target");

  const auto before_write = SteadyClock::now();
  writer.exec("INSERT INTO events (k) VALUES ('ryw') /* user_id='ryw' */");
  EXPECT_EQ(writer.scalar(row_query), "1") << "the writer reads its own row back";
  EXPECT_EQ(reader.scalar(row_query), "1") << "the same key on another connection too";
  EXPECT_EQ(side_of(reader, "ryw"), "source");
  EXPECT_EQ(side_of(reader, "ryw-other"), "target") << "a key that did not write is not held";
  ASSERT_LT(SteadyClock::now() - before_write, window) << "too slow to test within the window";

  // A write in a transaction, keyed by the session setting, holds that key too.
  writer.exec("SET pgshift.routing_key = 'ryw-tx'");
  writer.exec("BEGIN");
  writer.exec("INSERT INTO events (k) VALUES ('ryw-tx')");
  writer.exec("COMMIT");
  EXPECT_EQ(reader.scalar("SELECT count(*) FROM events WHERE k = 'ryw-tx' /* user_id='ryw-tx' */"),
            "1");

  // The hold ends once the window has passed: the key reads from the target again.
  ASSERT_TRUE(wait_until([&] { return side_of(reader, "ryw") == "target"; }, window + 10s,
                         "reads of the writer's key to return to the target"));
  EXPECT_GE(SteadyClock::now() - before_write, window) << "the hold ended before the window";
  EXPECT_EQ(events_on(split_servers().target), 0);
  const std::string metrics = fetch_metrics(proxy);
  EXPECT_GE(metric_sum(metrics, "pgshift_split_decisions_total",
                       {R"(route="main")", R"(decision="ryw_hold")"}),
            4)
      << metrics;
}

}  // namespace
}  // namespace pgshift::test
