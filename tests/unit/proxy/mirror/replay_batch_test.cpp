// proxy/mirror/replay_batch: which replayed transactions may have the next one pipelined
// behind them (ends_idle), and how one is written on the mirror's connection (prepared
// statements it holds left out, statements not yet confirmed respected).
#include "proxy/mirror/replay_batch.hpp"

#include <gtest/gtest.h>

#include "wire/byte_order.hpp"

namespace pgshift::mirror {
namespace {

void message(wire::Bytes& out, char type, const std::string& body) {
  out.push_back(static_cast<std::uint8_t>(type));
  const auto len = static_cast<std::uint32_t>(body.size() + 4);
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(len >> s));
  out.insert(out.end(), body.begin(), body.end());
}
std::string cstr(const std::string& s) {
  return s + std::string(1, '\0');
}
// Bind of `statement` to the unnamed portal, no parameters, then Execute.
void bind_execute(wire::Bytes& out, const std::string& statement) {
  message(out, 'B', cstr("") + cstr(statement) + std::string(6, '\0'));
  message(out, 'E', cstr("") + std::string(4, '\0'));
}
void parse(wire::Bytes& out, const std::string& statement, const std::string& sql) {
  wire::parse(out, statement, sql, {});
}
wire::Bytes queries(std::initializer_list<const char*> sqls) {
  wire::Bytes out;
  for (const char* q : sqls) wire::query(out, q);
  return out;
}

TEST(ReplayBatch, LoneExitStatements) {
  for (const char* s : {"COMMIT", "commit;", "END;", " end work ; ", "ROLLBACK",
                        "abort transaction", "/* user_id='42' */ COMMIT", "COMMIT -- done\n"}) {
    EXPECT_TRUE(is_lone_exit(s)) << s;
  }
  for (const char* s :
       {"", "COMMIT AND CHAIN", "ROLLBACK TO SAVEPOINT a", "COMMIT; UPDATE t SET a=1", "BEGIN",
        "END IF", "COMMIT PREPARED 'x'", "/* open comment COMMIT"}) {
    EXPECT_FALSE(is_lone_exit(s)) << s;
  }
}

TEST(ReplayBatch, LoneBeginAndCommitStatements) {
  for (const char* s :
       {"BEGIN", "begin;", "BEGIN WORK", "start transaction", "/* c */ BEGIN --\n"}) {
    EXPECT_TRUE(is_lone_begin(s)) << s;
  }
  for (const char* s : {"", "BEGIN ISOLATION LEVEL SERIALIZABLE", "BEGIN READ ONLY", "START",
                        "BEGIN; UPDATE t SET a = 1", "COMMIT"}) {
    EXPECT_FALSE(is_lone_begin(s)) << s;
  }
  for (const char* s : {"COMMIT", "end;", "COMMIT TRANSACTION"})
    EXPECT_TRUE(is_lone_commit(s)) << s;
  for (const char* s : {"ROLLBACK", "ABORT", "COMMIT AND CHAIN", "COMMIT PREPARED 'x'", "BEGIN"}) {
    EXPECT_FALSE(is_lone_commit(s)) << s;
  }
}

// The one Query join_transaction() appended, as text.
std::string joined_text(const wire::Bytes& out) {
  EXPECT_GE(out.size(), 6u);
  EXPECT_EQ(out[0], 'Q');
  EXPECT_EQ(wire::read_be32(out.data() + 1), out.size() - 1);
  EXPECT_EQ(out.back(), 0);
  return std::string(out.begin() + 5, out.end() - 1);
}

TEST(ReplayBatch, AJoinableTransactionBecomesOneQueryOfItsStatements) {
  wire::Bytes out = {'x'};  // what the pipeline holds already stays in front
  ASSERT_TRUE(join_transaction(queries({"BEGIN;", "UPDATE a SET x = 1 -- note", "SELECT 1;",
                                        "INSERT INTO h VALUES (now())", "END;"}),
                               out));
  EXPECT_EQ(out[0], 'x');
  out.erase(out.begin());
  // The line comment ends at the joint; a statement's own semicolon leaves an empty one.
  EXPECT_EQ(joined_text(out),
            "UPDATE a SET x = 1 -- note\n;SELECT 1;\n;INSERT INTO h VALUES (now())");
}

// The message types of `m`, in order.
std::string types(const wire::Bytes& m) {
  std::string out;
  for (std::size_t pos = 0; pos + 5 <= m.size(); pos += 1 + wire::read_be32(m.data() + pos + 1)) {
    out += static_cast<char>(m[pos]);
  }
  return out;
}

// One extended-protocol round trip: Parse of `statement` (when `sql` is given), Bind, Execute,
// Sync.
void round_trip(wire::Bytes& out, const std::string& statement, const char* sql = nullptr) {
  if (sql) parse(out, statement, sql);
  bind_execute(out, statement);
  message(out, 'S', "");
}

TEST(ReplayBatch, AJoinableExtendedTransactionLosesItsInnerSyncsAndItsBeginAndCommit) {
  wire::Bytes m;
  round_trip(m, "s0", "BEGIN");
  round_trip(m, "s1", "UPDATE a SET x = x + 1 WHERE id = 1");
  round_trip(m, "s1");  // the same statement again, already parsed
  round_trip(m, "s2", "END");
  wire::Bytes out;
  ASSERT_TRUE(join_transaction(m, out));
  // BEGIN's and END's Parse stay (the connection's statements stay known), their Bind and
  // Execute go; the UPDATE runs twice; one Sync at the end.
  EXPECT_EQ(types(out), "PPBEBEPS");
  // libpq's PQexecParams: unnamed statements; BEGIN's and END's go entirely.
  wire::Bytes unnamed;
  round_trip(unnamed, "", "BEGIN");
  round_trip(unnamed, "", "INSERT INTO a VALUES (1)");
  round_trip(unnamed, "", "COMMIT");
  out.clear();
  ASSERT_TRUE(join_transaction(unnamed, out));
  EXPECT_EQ(types(out), "PBES");
  wire::Bytes refused_begin;
  round_trip(refused_begin, "s0", "BEGIN ISOLATION LEVEL SERIALIZABLE");
  round_trip(refused_begin, "s1", "UPDATE a SET x = 1");
  round_trip(refused_begin, "s2", "COMMIT");
  wire::Bytes two_in_commit;
  round_trip(two_in_commit, "s0", "BEGIN");
  round_trip(two_in_commit, "s1", "UPDATE a SET x = 1");
  parse(two_in_commit, "s2", "COMMIT");
  bind_execute(two_in_commit, "s1");
  bind_execute(two_in_commit, "s2");
  message(two_in_commit, 'S', "");
  wire::Bytes no_middle;
  round_trip(no_middle, "s0", "BEGIN");
  round_trip(no_middle, "s2", "COMMIT");
  wire::Bytes unsynced_end = m;
  bind_execute(unsynced_end, "s1");  // after the last Sync
  for (const auto& r : {refused_begin, two_in_commit, no_middle, unsynced_end}) {
    wire::Bytes o;
    EXPECT_FALSE(join_transaction(r, o)) << types(r);
    EXPECT_TRUE(o.empty());
  }
}

TEST(ReplayBatch, OnlyABareBeginToCommitOfOneProtocolIsJoined) {
  const std::vector<wire::Bytes> refused = {
      queries({"BEGIN", "COMMIT"}),  // nothing between
      queries({"BEGIN ISOLATION LEVEL SERIALIZABLE", "UPDATE a SET x = 1", "COMMIT"}),
      queries({"BEGIN", "UPDATE a SET x = 1", "ROLLBACK"}),  // not a commit
      queries({"UPDATE a SET x = 1", "UPDATE a SET x = 2", "COMMIT"}),
      queries({"BEGIN", "UPDATE a SET x = 1", "COMMIT AND CHAIN"}),
  };
  for (const auto& m : refused) {
    wire::Bytes out;
    EXPECT_FALSE(join_transaction(m, out));
    EXPECT_TRUE(out.empty());
  }
  wire::Bytes extended = queries({"BEGIN"});
  parse(extended, "", "UPDATE a SET x = 1");
  bind_execute(extended, "");
  message(extended, 'S', "");
  wire::query(extended, "COMMIT");
  wire::Bytes out;
  EXPECT_FALSE(join_transaction(extended, out));
  EXPECT_TRUE(out.empty());
}

TEST(ReplayBatch, SimpleQueryBlocksEndingInALoneCommitEndIdle) {
  // pgbench TPC-B -M simple: each statement its own Query, END; last.
  EXPECT_TRUE(ends_idle(queries({"BEGIN;", "UPDATE a SET x = x + 1 WHERE id = 1;",
                                 "SELECT x FROM a WHERE id = 1;", "END;"})));
  // The COMMIT shares its Query with a statement that may fail: the block may stay open.
  EXPECT_FALSE(ends_idle(queries({"BEGIN", "UPDATE a SET x = 1; COMMIT"})));
  EXPECT_FALSE(ends_idle(queries({"BEGIN; UPDATE a SET x = 1; COMMIT"})));
}

TEST(ReplayBatch, SingleImplicitTransactionsEndIdleUnlessTheyOpenABlock) {
  EXPECT_TRUE(ends_idle(queries({"UPDATE a SET x = 1 WHERE id = 2"})));
  EXPECT_TRUE(ends_idle(queries({"INSERT INTO a VALUES (1); INSERT INTO a VALUES (2)"})));
  EXPECT_FALSE(ends_idle(queries({"START TRANSACTION; UPDATE a SET x = 1"})));
  EXPECT_FALSE(ends_idle(queries({"DO $$BEGIN UPDATE a SET x = 1; END$$"})));
  wire::Bytes ext;
  parse(ext, "s1", "UPDATE a SET x = $1");
  bind_execute(ext, "s1");
  wire::sync(ext);
  EXPECT_TRUE(ends_idle(ext));
  // A Query behind unsynced extended messages would be skipped with them after an error.
  wire::Bytes mixed = ext;
  mixed.resize(mixed.size() - 5);  // drop the Sync
  wire::query(mixed, "UPDATE a SET x = 2");
  EXPECT_FALSE(ends_idle(mixed));
  // A Bind of a statement whose text is not in the transaction: unknown.
  wire::Bytes unknown;
  bind_execute(unknown, "elsewhere");
  wire::sync(unknown);
  EXPECT_FALSE(ends_idle(unknown));
}

TEST(ReplayBatch, ExtendedBlocksEndingInABoundCommitEndIdle) {
  // pgbench -M prepared: BEGIN, statements, END, each Bind/Execute/Sync.
  wire::Bytes m;
  parse(m, "b", "BEGIN;");
  bind_execute(m, "b");
  wire::sync(m);
  parse(m, "u", "UPDATE a SET x = x + $1 WHERE id = $2;");
  bind_execute(m, "u");
  wire::sync(m);
  parse(m, "e", "END;");
  bind_execute(m, "e");
  wire::sync(m);
  EXPECT_TRUE(ends_idle(m));
  // The same, with the statements prepared by an earlier transaction (no Parse here).
  wire::Bytes later;
  bind_execute(later, "b");
  wire::sync(later);
  bind_execute(later, "e");
  wire::sync(later);
  EXPECT_FALSE(ends_idle(later)) << "the texts are unknown: conservative";
  // COMMIT in the same Sync as a statement that may fail.
  wire::Bytes joined;
  parse(joined, "b", "BEGIN");
  bind_execute(joined, "b");
  wire::sync(joined);
  parse(joined, "u", "UPDATE a SET x = 1");
  bind_execute(joined, "u");
  parse(joined, "c", "COMMIT");
  bind_execute(joined, "c");
  wire::sync(joined);
  EXPECT_FALSE(ends_idle(joined));
}

TEST(ReplayBatch, AppendLeavesOutParsesTheConnectionHolds) {
  wire::Bytes txn;
  parse(txn, "s1", "UPDATE a SET x = $1");
  bind_execute(txn, "s1");
  wire::sync(txn);
  pool::PreparedSet prepared(16);
  NameSet pending;
  wire::Bytes out;
  std::vector<std::string> introduced;
  ASSERT_TRUE(append_replay(txn, prepared, pending, out, introduced));
  EXPECT_EQ(out, txn);
  EXPECT_EQ(introduced, std::vector<std::string>{"s1"});
  // The same transaction again: the connection has s1.
  wire::Bytes again;
  std::vector<std::string> none;
  ASSERT_TRUE(append_replay(txn, prepared, pending, again, none));
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(again.size(), txn.size() - (1 + wire::read_be32(txn.data() + 1)));
  EXPECT_NE(again.front(), 'P');
}

TEST(ReplayBatch, AppendWaitsForStatementsOfUnansweredTransactions) {
  wire::Bytes txn;
  parse(txn, "s1", "UPDATE a SET x = $1");
  bind_execute(txn, "s1");
  wire::sync(txn);
  pool::PreparedSet prepared(16);
  NameSet pending;
  wire::Bytes out;
  std::vector<std::string> introduced;
  ASSERT_TRUE(append_replay(txn, prepared, pending, out, introduced));
  pending.insert(introduced.begin(), introduced.end());  // its answer has not come yet
  wire::Bytes second;
  std::vector<std::string> second_introduced;
  EXPECT_FALSE(append_replay(txn, prepared, pending, second, second_introduced));
  EXPECT_TRUE(second.empty());
  EXPECT_TRUE(prepared.contains("s1"));
  pending.clear();  // answered
  EXPECT_TRUE(append_replay(txn, prepared, pending, second, second_introduced));
}

TEST(ReplayBatch, AnEvictedStatementIsClosedAndUncertainUntilAnswered) {
  pool::PreparedSet prepared(1);
  NameSet pending;
  wire::Bytes a, b, out;
  parse(a, "s1", "SELECT 1");
  wire::sync(a);
  parse(b, "s2", "SELECT 2");
  wire::sync(b);
  std::vector<std::string> first, second;
  ASSERT_TRUE(append_replay(a, prepared, pending, out, first));
  out.clear();
  ASSERT_TRUE(append_replay(b, prepared, pending, out, second));
  EXPECT_EQ(out.front(), 'C') << "s1 is closed before s2 is prepared";
  EXPECT_EQ(second, (std::vector<std::string>{"s1", "s2"}));
}

}  // namespace
}  // namespace pgshift::mirror
