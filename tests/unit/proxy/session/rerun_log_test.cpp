// RerunLog: which transactions a stale sidecar may run again on the new side, and which of
// the re-run's answers the client already has (docs/cutover.md "Stale sidecars").
#include "proxy/session/rerun_log.hpp"

#include <gtest/gtest.h>

#include <string>

#include "wire/builder.hpp"

namespace pgshift::proxy {
namespace {

using Verdict = RerunLog::Verdict;

wire::Bytes query(const std::string& sql) {
  wire::Bytes out;
  wire::query(out, sql);
  return out;
}

void complete(RerunLog& log, const std::string& tag) {
  wire::Bytes c;
  wire::command_complete(c, tag);
  log.answer('C', std::span<const std::uint8_t>(c).subspan(5));
}

void answer(RerunLog& log, char type) {
  log.answer(static_cast<std::uint8_t>(type), {});
}

TEST(RerunLogTest, BeginAndSetLocalKeepATransactionReRunnable) {
  RerunLog log;
  EXPECT_FALSE(log.rerunnable());  // nothing logged
  log.begin();
  const auto begin = query("BEGIN"), set = query("SET LOCAL lock_timeout = 1000"),
             insert = query("INSERT INTO t VALUES (1)");
  log.client_message(begin);
  complete(log, "BEGIN");
  answer(log, 'Z');
  log.client_message(set);
  complete(log, "SET");
  answer(log, 'N');  // a notice is not counted
  answer(log, 'S');  // nor a reported setting
  answer(log, 'Z');
  log.client_message(insert);
  EXPECT_TRUE(log.rerunnable());

  const wire::Bytes taken = log.take_for_rerun();
  wire::Bytes all = begin;
  all.insert(all.end(), set.begin(), set.end());
  all.insert(all.end(), insert.begin(), insert.end());
  EXPECT_EQ(taken, all);
  EXPECT_FALSE(log.rerunnable());
  // The re-run: BEGIN's and SET's answers (and notices among them) are dropped, then the
  // INSERT's go to the client.
  ASSERT_TRUE(log.dropping());
  for (char t : {'C', 'Z', 'N', 'C', 'S', 'Z'}) {
    EXPECT_EQ(log.rerun_answer(static_cast<std::uint8_t>(t)), Verdict::drop) << t;
  }
  EXPECT_FALSE(log.dropping());
  EXPECT_EQ(log.rerun_answer('C'), Verdict::forward);
  EXPECT_EQ(log.rerun_answer('Z'), Verdict::forward);
}

TEST(RerunLogTest, RowsAnotherCommandOrAnErrorEndIt) {
  for (char work : {'D', 'E', 'G', 'V', 's'}) {
    RerunLog log;
    log.begin();
    log.client_message(query("BEGIN; SELECT 1; INSERT INTO t VALUES (1)"));
    complete(log, "BEGIN");
    answer(log, 'T');
    answer(log, work);
    EXPECT_FALSE(log.rerunnable()) << work;
    log.client_message(query("INSERT INTO t VALUES (2)"));  // not logged any more
    EXPECT_FALSE(log.rerunnable()) << work;
  }
  for (const char* tag : {"SELECT 1", "INSERT 0 1", "COMMIT", "LOCK TABLE", "DO"}) {
    RerunLog log;
    log.begin();
    log.client_message(query("x"));
    complete(log, tag);
    EXPECT_FALSE(log.rerunnable()) << tag;
  }
  RerunLog log;  // a new transaction starts over
  log.begin();
  log.client_message(query("INSERT INTO t VALUES (3)"));
  EXPECT_TRUE(log.rerunnable());
}

TEST(RerunLogTest, CopyFunctionCallsAndLargeLogsAreNotKept) {
  RerunLog log;
  log.begin();
  wire::Bytes copy_data = {'d', 0, 0, 0, 5, 'x'};
  log.client_message(copy_data);
  EXPECT_FALSE(log.rerunnable());
  log.begin();
  log.client_message(query(std::string(RerunLog::kMaxBytes, 'x')));
  EXPECT_FALSE(log.rerunnable());
}

TEST(RerunLogTest, ADifferentAnswerIsAMismatchButAnErrorInTheLastExchangeIsForwarded) {
  RerunLog log;
  log.begin();
  log.client_message(query("BEGIN"));
  complete(log, "BEGIN");
  answer(log, 'Z');
  log.client_message(query("INSERT INTO t VALUES (1)"));
  log.take_for_rerun();
  EXPECT_EQ(log.rerun_answer('T'), Verdict::mismatch);  // expected BEGIN's CommandComplete
  EXPECT_EQ(log.rerun_answer('E'), Verdict::mismatch);  // BEGIN's ReadyForQuery still to come

  RerunLog ext;  // Parse/Bind/Describe answered, then the fence at Execute
  ext.begin();
  ext.client_message(query("placeholder"));
  answer(ext, '1');
  answer(ext, '2');
  answer(ext, 'n');
  ext.take_for_rerun();
  EXPECT_EQ(ext.rerun_answer('1'), Verdict::drop);
  EXPECT_EQ(ext.rerun_answer('E'), Verdict::forward);  // the client learns in its exchange
  EXPECT_FALSE(ext.dropping());
  EXPECT_EQ(ext.rerun_answer('Z'), Verdict::forward);
}

TEST(RerunLogTest, ASecondFenceDuringTheDropKeepsWhatTheClientHas) {
  RerunLog log;
  log.begin();
  log.client_message(query("BEGIN"));
  complete(log, "BEGIN");
  answer(log, 'Z');
  log.client_message(query("INSERT INTO t VALUES (1)"));
  const wire::Bytes first = log.take_for_rerun();
  log.begin();  // the re-run sends the messages again
  log.client_message(first);
  EXPECT_EQ(log.rerun_answer('C'), Verdict::drop);
  complete(log, "BEGIN");
  // Fenced again before BEGIN's ReadyForQuery came back: the client still has both answers.
  EXPECT_EQ(log.take_for_rerun(), first);
  EXPECT_EQ(log.rerun_answer('C'), Verdict::drop);
  EXPECT_EQ(log.rerun_answer('Z'), Verdict::drop);
  EXPECT_EQ(log.rerun_answer('C'), Verdict::forward);
}

TEST(RerunLogTest, ATransactionIsReRunAtMostThreeTimes) {
  RerunLog log;
  log.begin();
  log.client_message(query("INSERT INTO t VALUES (1)"));
  for (int i = 0; i < RerunLog::kMaxReruns; ++i) {
    ASSERT_TRUE(log.rerunnable()) << i;
    const wire::Bytes again = log.take_for_rerun();
    log.begin();  // the re-run's first message
    log.client_message(again);
  }
  EXPECT_FALSE(log.rerunnable());
  log.begin();  // the next transaction
  log.client_message(query("INSERT INTO t VALUES (2)"));
  EXPECT_TRUE(log.rerunnable());
}

}  // namespace
}  // namespace pgshift::proxy
