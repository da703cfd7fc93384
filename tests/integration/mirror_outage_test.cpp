// Mirrored writes (issue 12, sync.mode mirror) against two real PostgreSQL 15 clusters,
// part 2: outages and their limits. The pipelined replay cut by a FATAL in its middle, the
// target down in async mode and with ack: sync, a queue overflow under mark_diverged and with
// a spool, and the recovery of a start whose sidecar died during the copy. The flow and the
// divergences: mirror_flow_test.cpp.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "tests/integration/mirror_support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

// A pipelined run cut by the server (FATAL, as at a shutdown) in its middle: the
// transactions answered before stay applied, the rest run again from the first unanswered
// one on a new connection, each exactly once.
TEST(MirrorOutage, AFatalInsideAPipelinedRunReplaysFromTheFirstUnansweredOnce) {
  create_db_both("mfatal",
                 "CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL); CREATE TABLE gate (id int)");
  servers().source.exec("INSERT INTO t SELECT g, 0 FROM generate_series(1, 10) g", "mfatal");
  PgshiftProcess proxy(proxy_options(config_yaml("mfatal")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mfatal"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(
      wait_until([&] { return mirror_drained(proxy, "mfatal"); }, 30s, "the mirror drains"));
  const auto applied_before = json_number(mirror_status(proxy, "mfatal"), "applied");
  auto mirror_waits = [] { return replay_waits_on_lock("mfatal"); };
  // The first replay waits on a table lock while ten updates queue behind it.
  PgConnection table_lock(servers().target.conninfo({}, std::nullopt, "mfatal"));
  table_lock.exec("BEGIN; LOCK TABLE gate IN ACCESS EXCLUSIVE MODE");
  PgConnection c(proxy.conninfo("postgres", kPassword, "mfatal"));
  c.exec("INSERT INTO gate VALUES (0)");
  ASSERT_TRUE(wait_until(mirror_waits, 30s, "the first replay waits on the table lock"));
  for (int i = 1; i <= 10; ++i) c.exec("UPDATE t SET v = v + 1 WHERE id = " + std::to_string(i));
  // Row 5 locked on the target: of the ten sent back to back, 1..4 apply, 5 waits.
  PgConnection row_lock(servers().target.conninfo({}, std::nullopt, "mfatal"));
  row_lock.exec("BEGIN; SELECT * FROM t WHERE id = 5 FOR UPDATE");
  table_lock.exec("COMMIT");
  ASSERT_TRUE(wait_until(
      [&] { return json_number(mirror_status(proxy, "mfatal"), "applied") == applied_before + 5; },
      30s, "the gate and updates 1..4 apply"));
  ASSERT_TRUE(wait_until(mirror_waits, 30s, "update 5 waits on the row lock"));
  servers().target.exec(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
      "application_name = 'pgshift-mirror'",
      "mfatal");
  ASSERT_TRUE(wait_until(mirror_waits, 30s, "update 5 runs again and waits again"));
  row_lock.exec("COMMIT");
  ASSERT_TRUE(
      wait_until([&] { return mirror_drained(proxy, "mfatal"); }, 30s, "the mirror drains"));
  auto m = mirror_status(proxy, "mfatal");
  EXPECT_EQ(json_number(m, "divergences"), 0) << boost::json::serialize(m) << proxy.log();
  EXPECT_EQ(json_number(m, "applied") - applied_before, 11) << boost::json::serialize(m);
  // Every update applied exactly once.
  EXPECT_EQ(servers()
                .target.exec("SELECT string_agg(v::text, ',' ORDER BY id) FROM t", "mfatal")
                .scalar(),
            "1,1,1,1,1,1,1,1,1,1");
}

TEST(MirrorOutage, TargetDownInAsyncModeQueuesAndCatchesUp) {
  create_db_both("mdown", "CREATE TABLE ledger (id int PRIMARY KEY, note text)");
  PgshiftProcess proxy(proxy_options(config_yaml("mdown")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mdown"}).exit_code, 0) << proxy.log();
  PgConnection c(proxy.conninfo("postgres", kPassword, "mdown"));
  c.exec("INSERT INTO ledger VALUES (0, 'before')");
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mdown"); }, 30s, "the mirror drains"));
  servers().target.stop();
  for (int i = 1; i <= 200; ++i) {
    c.exec("INSERT INTO ledger VALUES (" + std::to_string(i) + ", 'while the target is down')");
  }
  auto down = mirror_status(proxy, "mdown");
  EXPECT_GT(json_number(down, "queued"), 0) << boost::json::serialize(down);
  servers().target.start();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mdown"); }, 60s, "the queue drains"));
  EXPECT_EQ(json_number(mirror_status(proxy, "mdown"), "divergences"), 0) << proxy.log();
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM ledger", "mdown").scalar(), "201");
  EXPECT_EQ(run_pgshift(proxy, {"verify", "mdown"}).exit_code, 0);
}

// ack: sync with overflow block: a commit returns only once the mirror committed it too;
// while the target is down the client waits, and goes on when it returns.
TEST(MirrorAckSync, ACommitReturnsOnlyOnceTheTargetHasIt) {
  create_db_both("mack", "CREATE TABLE ledger (id int PRIMARY KEY)");
  PgshiftProcess proxy(proxy_options(config_yaml("mack", "  mirror:\n    ack: sync\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mack"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mack"); }, 30s, "the mirror streams"));
  PgConnection c(proxy.conninfo("postgres", kPassword, "mack"));
  for (int i = 1; i <= 20; ++i) {
    c.exec("INSERT INTO ledger VALUES (" + std::to_string(i) + ")");
    // Acknowledged: already on the target.
    ASSERT_EQ(servers().target.exec("SELECT count(*) FROM ledger", "mack").scalar(),
              std::to_string(i));
  }
  servers().target.stop();
  std::atomic<bool> returned{false};
  std::string seen_on_target;
  std::thread writer([&] {
    c.exec("INSERT INTO ledger VALUES (21)");
    returned = true;
  });
  ASSERT_TRUE(wait_until(
      [&] {
        return servers().source.exec("SELECT count(*) FROM ledger", "mack").scalar() == "21" &&
               json_number(mirror_status(proxy, "mack"), "queued") == 1;
      },
      30s, "committed on the source, queued for the mirror"));
  EXPECT_FALSE(returned.load()) << "the commit was acknowledged while the target was down";
  servers().target.start();
  writer.join();
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM ledger WHERE id = 21", "mack").scalar(),
            "1");
  EXPECT_EQ(json_number(mirror_status(proxy, "mack"), "divergences"), 0);
}

TEST(MirrorOverflow, MarkDivergedStopsMirroringAndSaysWhatToDo) {
  create_db_both("mover", "CREATE TABLE blobs (id int PRIMARY KEY, data text)");
  PgshiftProcess proxy(proxy_options(config_yaml(
      "mover", "  mirror:\n    max_queue_bytes: 1048576\n    overflow: mark_diverged\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mover"}).exit_code, 0) << proxy.log();
  servers().target.stop();  // nothing drains
  PgConnection c(proxy.conninfo("postgres", kPassword, "mover"));
  const std::string big(100000, 'x');  // in the statement: the queue holds its bytes
  for (int i = 1; i <= 20; ++i) {
    c.exec("INSERT INTO blobs VALUES (" + std::to_string(i) + ", '" + big + "')");
  }
  // Nothing was lost on the source, and the client saw no error.
  EXPECT_EQ(servers().source.exec("SELECT count(*) FROM blobs", "mover").scalar(), "20");
  auto m = mirror_status(proxy, "mover");
  EXPECT_EQ(m.at("mirroring"), false) << boost::json::serialize(m);
  EXPECT_EQ(m.at("diverged"), true);
  EXPECT_EQ(m.at("state"), "diverged");
  auto overflow = metric_value(fetch_metrics(proxy), "pgshift_mirror_divergences_total",
                               {{"route", "mover"}, {"kind", "overflow"}});
  EXPECT_EQ(overflow.value_or(0), 1);
  auto status = run_pgshift(proxy, {"sync", "status", "mover"});
  EXPECT_NE(status.out.find("mirroring is STOPPED"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("pgshift sync start"), std::string::npos) << status.out;
  servers().target.start();
}

// The same outage with a spool: what the memory queue cannot hold spills to
// sync.mirror.spool_dir instead of diverging, and comes back in order when the target does.
TEST(MirrorOverflow, AFullMemoryQueueSpillsToTheSpoolAndDrainsInOrder) {
  create_db_both("mspool", "CREATE TABLE blobs (id int PRIMARY KEY, data text)");
  PgshiftProcess proxy(proxy_options(config_yaml("mspool",
                                                 "  mirror:\n    max_queue_bytes: 1048576\n"
                                                 "    overflow: mark_diverged\n"
                                                 "    spool_dir: spool\n")));
  ASSERT_EQ(run_pgshift(proxy, {"sync", "start", "mspool"}).exit_code, 0) << proxy.log();
  ASSERT_TRUE(
      wait_until([&] { return mirror_drained(proxy, "mspool"); }, 30s, "the mirror streams"));
  servers().target.stop();  // nothing drains
  PgConnection c(proxy.conninfo("postgres", kPassword, "mspool"));
  const std::string big(100000, 'x');  // 40 x 100 kB: four times the memory queue
  for (int i = 1; i <= 40; ++i) {
    c.exec("INSERT INTO blobs VALUES (" + std::to_string(i) + ", '" + big + "')");
  }
  // The last one overwrites the first: replayed out of order, the target would differ.
  c.exec("UPDATE blobs SET data = 'last' WHERE id = 1");
  auto m = mirror_status(proxy, "mspool");
  EXPECT_EQ(m.at("mirroring"), true) << boost::json::serialize(m);
  EXPECT_EQ(json_number(m, "queued"), 41) << boost::json::serialize(m);
  EXPECT_GT(json_number(m, "spooled"), 20) << boost::json::serialize(m);
  const std::string file =
      m.contains("spool_file") ? std::string(m.at("spool_file").as_string()) : std::string();
  ASSERT_FALSE(file.empty()) << boost::json::serialize(m);
  EXPECT_GT(std::filesystem::file_size(file), 2'000'000u);
  auto spooled =
      metric_value(fetch_metrics(proxy), "pgshift_mirror_spool_bytes", {{"route", "mspool"}});
  EXPECT_GT(spooled.value_or(0), 2'000'000);

  servers().target.start();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(proxy, "mspool"); }, 60s, "the spool drains"));
  m = mirror_status(proxy, "mspool");
  EXPECT_EQ(json_number(m, "divergences"), 0) << boost::json::serialize(m);
  EXPECT_EQ(json_number(m, "spooled"), 0);
  EXPECT_EQ(std::filesystem::file_size(file), 0u) << "the drained spool gives its space back";
  EXPECT_EQ(servers().target.exec("SELECT data FROM blobs WHERE id = 1", "mspool").scalar(),
            "last");
  expect_verify_equal(proxy, "mspool");
  // sync stop: the fleet moves the route to source_only; nothing is mirrored after it.
  auto stop = run_pgshift(proxy, {"sync", "stop", "mspool"});
  EXPECT_EQ(stop.exit_code, 0) << stop.describe();
  EXPECT_NE(stop.out.find("no transaction is mirrored from here on"), std::string::npos)
      << stop.out;
  EXPECT_TRUE(wait_until([&] { return mirror_status(proxy, "mspool").at("state") == "off"; }, 10s,
                         "the mirror turns off"));
}

// The sidecar running `sync start` dies (SIGKILL) in the middle of the copy: the route is left
// in phase sync with the copy pending. `pgshift ctl recover` through another sidecar refuses
// while the copy's heartbeat is fresh, then turns mirroring off and empties the target's
// tables; a new `sync start` then completes and verify is equal.
TEST(MirrorRecover, AStartWhoseSidecarDiedDuringTheCopyIsUndoneAndCanStartAgain) {
  create_db_both("mrecover", "CREATE TABLE big (id int PRIMARY KEY, note text)");
  servers().source.exec("INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 5000) g",
                        "mrecover");
  const std::string yaml = config_yaml("mrecover", "", "transaction", "{poll_ms: 250}");
  auto a = std::make_unique<PgshiftProcess>(proxy_options(yaml));
  // The copy into the target waits on this lock: the kill lands inside the copy.
  PgConnection lock(servers().target.conninfo({}, std::nullopt, "mrecover"));
  lock.exec("BEGIN");
  lock.exec("LOCK TABLE big IN SHARE MODE");  // reads pass, the COPY waits
  Process start(ProcessOptions{.argv = {pgshift_binary().string(), "sync", "start", "mrecover",
                                        "--config", a->config_file().string()},
                               .merge_output = true});
  ASSERT_TRUE(wait_until(
      [&] {
        return servers()
                   .target
                   .exec(
                       "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %big%'"
                       " AND wait_event_type = 'Lock'",
                       "mrecover")
                   .scalar() == "1";
      },
      30s, "the copy waits on the target's lock"));
  a->send_signal(SIGKILL);
  ASSERT_TRUE(start.wait_for(30s).has_value());
  lock.exec("ROLLBACK");

  PgshiftProcess b(proxy_options(yaml));
  auto ctl = [&](const std::string& kind) { return run_ctl(b, {kind, "mrecover"}, 60s); };
  // A live coordinator writes a heartbeat every few seconds: stand in for one that wrote it
  // just now, so that the refusal below does not depend on how fast `b` started (a slow
  // start, under a sanitizer on a loaded machine, let the killed one's heartbeat go stale).
  servers().target.exec(
      "UPDATE pgshift.mirror_copies SET heartbeat_at = now() WHERE route = 'mrecover'", "mrecover");
  CommandResult rec = ctl("recover");
  EXPECT_NE(rec.out.find("is running: its coordinator wrote a heartbeat"), std::string::npos)
      << rec.describe();
  ASSERT_TRUE(wait_until(
      [&] {
        rec = ctl("recover");
        return rec.out.find("is running") == std::string::npos;
      },
      30s, "the copy's heartbeat goes stale"));
  ASSERT_EQ(rec.exit_code, 0) << rec.describe() << b.log();
  EXPECT_NE(rec.out.find("mirror_off"), std::string::npos) << rec.out;
  EXPECT_NE(rec.out.find("both databases as before the interrupted sync start"), std::string::npos)
      << rec.out;
  EXPECT_EQ(servers().target.exec("SELECT count(*) FROM big", "mrecover").scalar(), "0");
  EXPECT_EQ(
      servers().target.exec("SELECT count(*) FROM pgshift.mirror_copies", "mrecover").scalar(),
      "0");
  EXPECT_TRUE(wait_until([&] { return mirror_status(b, "mrecover").at("state") == "off"; }, 10s,
                         "the sidecar stops mirroring"));

  auto again = run_pgshift(b, {"sync", "start", "mrecover"});
  ASSERT_EQ(again.exit_code, 0) << again.describe() << b.log();
  ASSERT_TRUE(wait_until([&] { return mirror_drained(b, "mrecover"); }, 30s, "the mirror streams"));
  EXPECT_EQ(run_pgshift(b, {"verify", "mrecover"}).exit_code, 0);
}

}  // namespace
}  // namespace pgshift::test
