#include "routing/classifier.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "classifier_cases.hpp"

namespace pgshift::routing {
namespace {

TEST(ClassifierTable, HasAtLeast300Statements) {
  EXPECT_GE(testing::classifier_cases().size(), 300u);
}

TEST(ClassifierTable, NoDuplicateStatements) {
  std::set<std::string_view> seen;
  for (const auto& c : testing::classifier_cases()) {
    EXPECT_TRUE(seen.insert(c.sql).second) << "duplicate: " << c.sql;
  }
}

TEST(ClassifierTable, EveryStatementGetsItsExpectedClass) {
  const Classifier classifier;
  int failures = 0;
  for (const auto& c : testing::classifier_cases()) {
    const Classification got = classifier.classify(c.sql);
    if (got.kind != c.expected) {
      ++failures;
      ADD_FAILURE() << "statement: " << c.sql << "\n  expected " << to_string(c.expected)
                    << ", got " << to_string(got.kind);
    }
  }
  EXPECT_EQ(failures, 0);
}

// Whatever else may vary, a statement that is not read_only in the table must never be
// read_only when padded with comments, whitespace or case changes.
TEST(ClassifierTable, StableUnderCommentsAndWhitespace) {
  const Classifier classifier;
  for (const auto& c : testing::classifier_cases()) {
    const std::string padded = "/* x */\n  " + std::string(c.sql) + "\n-- tail";
    const Classification got = classifier.classify(padded);
    if (c.sql.find("--") != std::string_view::npos || c.sql.find("/*") != std::string_view::npos) {
      continue;  // unterminated comments change meaning when more text follows
    }
    EXPECT_EQ(got.kind, c.expected) << padded;
  }
}

Classification classify(std::string_view sql) {
  return Classifier().classify(sql);
}

TEST(ClassifierFlags, LockingClause) {
  EXPECT_TRUE(classify("SELECT * FROM t FOR NO KEY UPDATE").has_locking_clause);
  EXPECT_TRUE(classify("SELECT * FROM t FOR KEY SHARE").has_locking_clause);
  EXPECT_FALSE(classify("SELECT substring(x FROM 1 FOR 2) FROM t").has_locking_clause);
  const auto c = classify("SELECT * FROM t FOR UPDATE");
  EXPECT_TRUE(c.has_locking_clause);
  EXPECT_FALSE(c.has_data_modification);
}

TEST(ClassifierFlags, UnknownFunctionIsNamed) {
  auto c = classify("SELECT lower(x), audit.touch(x), other(y) FROM t");
  EXPECT_TRUE(c.calls_unknown_function);
  EXPECT_EQ(c.unknown_function, "audit.touch");
  EXPECT_EQ(c.kind, StatementClass::write);
  EXPECT_FALSE(classify("SELECT nextval('s')").calls_unknown_function);  // known, not unknown
  EXPECT_FALSE(classify("INSERT INTO t(a) VALUES (1)").calls_unknown_function);
}

TEST(ClassifierFlags, OnlyUnknownFunctions) {
  EXPECT_TRUE(classify("SELECT f(1)").only_unknown_functions);
  EXPECT_TRUE(classify("SELECT f(1); SELECT 2; COMMIT").only_unknown_functions);
  EXPECT_TRUE(classify("DECLARE c CURSOR FOR SELECT f()").only_unknown_functions);
  EXPECT_FALSE(classify("SELECT 1").only_unknown_functions);  // read_only already
  EXPECT_FALSE(classify("SELECT f(1), nextval('s')").only_unknown_functions);
  EXPECT_FALSE(classify("SELECT f(1) FOR SHARE").only_unknown_functions);
  EXPECT_FALSE(classify("SELECT f(1); SET a.b = 1").only_unknown_functions);
  EXPECT_FALSE(classify("DECLARE c CURSOR WITH HOLD FOR SELECT f()").only_unknown_functions);
  EXPECT_FALSE(classify("UPDATE t SET a = f(1)").only_unknown_functions);
}

TEST(ClassifierFlags, DataModification) {
  EXPECT_TRUE(
      classify("WITH x AS (DELETE FROM t RETURNING *) SELECT * FROM x").has_data_modification);
  EXPECT_TRUE(classify("SELECT * INTO t2 FROM t").has_data_modification);
  EXPECT_TRUE(classify("COPY t FROM STDIN").has_data_modification);
  EXPECT_FALSE(classify("SELECT \"delete\" FROM t").has_data_modification);
}

TEST(ClassifierFlags, PinReasons) {
  EXPECT_EQ(classify("SET search_path = app").pin, PinReason::set);
  EXPECT_EQ(classify("SET LOCAL search_path = app").pin, PinReason::none);
  EXPECT_EQ(classify("LISTEN ch").pin, PinReason::listen);
  EXPECT_EQ(classify("UNLISTEN ch").pin, PinReason::none);
  EXPECT_EQ(classify("SELECT pg_advisory_lock(1)").pin, PinReason::advisory_lock);
  EXPECT_EQ(classify("SELECT pg_advisory_xact_lock(1)").pin, PinReason::none);
  EXPECT_EQ(classify("CREATE TEMP TABLE x (a int)").pin, PinReason::temp_table);
  EXPECT_EQ(classify("SELECT 1 INTO TEMP x").pin, PinReason::temp_table);
  EXPECT_EQ(classify("DECLARE c CURSOR WITH HOLD FOR SELECT 1").pin, PinReason::with_hold_cursor);
  EXPECT_EQ(classify("PREPARE p AS SELECT 1").pin, PinReason::prepare);
  EXPECT_EQ(classify("SELECT set_config('a.b', 'c', false)").pin, PinReason::set_config);
  EXPECT_EQ(classify("SELECT set_config('a.b', 'c', true)").pin, PinReason::none);
  EXPECT_EQ(classify("LOAD 'x'").pin, PinReason::load);
  EXPECT_EQ(classify("INSERT INTO t SELECT pg_advisory_lock(1)").pin, PinReason::advisory_lock);
  EXPECT_EQ(classify("SELECT 1; SET a.b = 1; LISTEN c").pin, PinReason::set);  // first wins
  EXPECT_EQ(classify("SET pgshift.routing_key = '1'").pin, PinReason::none);
  EXPECT_TRUE(classify("LISTEN ch").pins_session());
  EXPECT_EQ(to_string(PinReason::with_hold_cursor), "WITH HOLD cursor");
  EXPECT_EQ(to_string(PinReason::advisory_lock), "advisory lock");
}

TEST(ClassifierFlags, NotUnderstood) {
  EXPECT_TRUE(classify("SELECT 'x").not_understood);
  EXPECT_TRUE(classify("SELECT 1 /* x").not_understood);
  EXPECT_TRUE(classify("SELECT \\").not_understood);
  EXPECT_FALSE(classify("SELECT 1").not_understood);
}

TEST(ClassifierFlags, ControlsTransaction) {
  for (const char* sql : {"BEGIN", "start transaction read only", "COMMIT", "END", "ROLLBACK",
                          "SAVEPOINT a", "RELEASE a", "ROLLBACK TO a", "SET LOCAL x.y = 1",
                          "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
                          "UPDATE t SET a = 1; COMMIT", "SELECT 'x"}) {
    EXPECT_TRUE(classify(sql).controls_transaction) << sql;
  }
  for (const char* sql : {"UPDATE t SET a = 1", "INSERT INTO t VALUES (1); SELECT 1", "SET x.y = 1",
                          "SELECT 'commit'", "", "DO $$BEGIN NULL; END$$"}) {
    EXPECT_FALSE(classify(sql).controls_transaction) << sql;
  }
}

TEST(ClassifierFlags, StatementCount) {
  EXPECT_EQ(classify("").statement_count, 0u);
  EXPECT_EQ(classify("SELECT 1").statement_count, 1u);
  EXPECT_EQ(classify("SELECT 1;; SELECT $$;$$; -- x\n SELECT 3;").statement_count, 3u);
}

TEST(ClassifierRoutingKey, SetAndReset) {
  auto c = classify("SET pgshift.routing_key = '42'");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->kind, RoutingKeyChange::Kind::set);
  EXPECT_EQ(c.routing_key_change->value, "42");
  EXPECT_FALSE(c.routing_key_change->local);
  EXPECT_TRUE(c.only_routing_key);

  c = classify("set PGSHIFT.Routing_Key to 1234");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "1234");

  c = classify("SET pgshift.routing_key = user_9");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "user_9");

  c = classify("SET pgshift.routing_key = 'it''s'");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "it's");

  c = classify("SET pgshift.routing_key = E'a\\'b'");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "a'b");

  c = classify("SET pgshift.routing_key = $$x$$");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "x");

  c = classify("SET pgshift.routing_key = -5");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "-5");

  c = classify("SET LOCAL pgshift.routing_key = 'tx'");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_TRUE(c.routing_key_change->local);
  EXPECT_EQ(c.kind, StatementClass::set_local);

  c = classify("SET pgshift.routing_key TO DEFAULT");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->kind, RoutingKeyChange::Kind::reset);

  c = classify("RESET pgshift.routing_key");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->kind, RoutingKeyChange::Kind::reset);
  EXPECT_TRUE(c.only_routing_key);

  c = classify("RESET ALL");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->kind, RoutingKeyChange::Kind::reset);
  EXPECT_FALSE(c.only_routing_key);

  c = classify("DISCARD ALL");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_FALSE(c.only_routing_key);

  c = classify("SET pgshift.routing_key = '1'; SET pgshift.routing_key = '2'");
  ASSERT_TRUE(c.routing_key_change);
  EXPECT_EQ(c.routing_key_change->value, "2");  // the last one wins
  EXPECT_TRUE(c.only_routing_key);

  c = classify("SET pgshift.routing_key = '1'; SELECT 1");
  EXPECT_FALSE(c.only_routing_key);
  EXPECT_EQ(c.kind, StatementClass::read_only);

  EXPECT_FALSE(classify("SET pgshift.other = '1'").routing_key_change);
  EXPECT_FALSE(classify("SELECT 'SET pgshift.routing_key = 1'").routing_key_change);
}

TEST(ClassifierRoutingKey, ConfiguredSettingName) {
  ClassifierOptions o;
  o.routing_key_setting = "app.tenant";
  const Classifier c(o);
  EXPECT_EQ(c.classify("SET app.tenant = 't1'").routing_key_change->value, "t1");
  EXPECT_FALSE(c.classify("SET pgshift.routing_key = '1'").routing_key_change);
  EXPECT_EQ(c.classify("SET pgshift.routing_key = '1'").pin, PinReason::set);
}

TEST(ClassifierRoutingKey, CommentKey) {
  auto c = classify("SELECT 1 /* user_id='42' */");
  ASSERT_TRUE(c.comment_routing_key);
  EXPECT_EQ(*c.comment_routing_key, "42");
  EXPECT_FALSE(classify("SELECT '/* user_id=''42'' */'").comment_routing_key);

  ClassifierOptions o;
  o.comment_key = "tenant";
  EXPECT_EQ(*Classifier(o).classify("SELECT 1 /*tenant='t%2F1',user_id='2'*/").comment_routing_key,
            "t/1");
}

TEST(ClassifierOptions, ExtraAllowedFunctions) {
  ClassifierOptions o;
  o.allowed_functions = {"my_pure_fn", "Reporting.Score", "pg_catalog.hashtext", "nextval"};
  const Classifier c(o);
  EXPECT_EQ(c.classify("SELECT my_pure_fn(1)").kind, StatementClass::read_only);
  EXPECT_EQ(c.classify("SELECT MY_PURE_FN(1)").kind, StatementClass::read_only);
  EXPECT_EQ(c.classify("SELECT reporting.score(1)").kind, StatementClass::read_only);
  EXPECT_EQ(c.classify("SELECT score(1)").kind, StatementClass::write);
  EXPECT_EQ(c.classify("SELECT other.my_pure_fn(1)").kind, StatementClass::write);
  EXPECT_EQ(c.classify("SELECT hashtext('x')").kind, StatementClass::read_only);
  // the deny list wins over configuration
  EXPECT_EQ(c.classify("SELECT nextval('s')").kind, StatementClass::write);
}

TEST(ClassifierOptions, FromRoute) {
  config::Route route;
  route.routing_key.setting = "app.key";
  route.routing_key.comment_key = "account";
  route.read_split.allowed_functions = {"f"};
  const Classifier c = Classifier::from_route(route);
  EXPECT_EQ(c.classify("SELECT f()").kind, StatementClass::read_only);
  EXPECT_EQ(c.classify("SET app.key = 'k'").routing_key_change->value, "k");
  EXPECT_EQ(*c.classify("SELECT 1 /* account='a' */").comment_routing_key, "a");
}

TEST(ClassifierOptions, StandardConformingStringsOff) {
  // With standard_conforming_strings = off the server reads '\'' as a quote inside the
  // literal; if the lexer did not know, the DELETE below would be hidden from it.
  const std::string_view sql = "SELECT '\\', ' ; DELETE FROM t; --'";
  EXPECT_EQ(Classifier().classify(sql).kind, StatementClass::read_only);
  ClassifierOptions o;
  o.lexer.standard_conforming_strings = false;
  EXPECT_EQ(Classifier(o).classify(sql).kind, StatementClass::write);
}

TEST(Classifier, ToStringCoversEveryClass) {
  for (int i = 0; i <= static_cast<int>(StatementClass::other); ++i) {
    EXPECT_NE(to_string(static_cast<StatementClass>(i)), "invalid");
  }
}

TEST(Classifier, DeepNestingIsLinearAndSafe) {
  std::string sql = "SELECT ";
  for (int i = 0; i < 20000; ++i) sql += "lower(";
  sql += "'x'";
  for (int i = 0; i < 20000; ++i) sql += ")";
  EXPECT_EQ(classify(sql).kind, StatementClass::read_only);
  std::string explains;
  for (int i = 0; i < 50; ++i) explains += "EXPLAIN ";
  EXPECT_EQ(classify(explains + "SELECT 1").kind, StatementClass::write);
}

}  // namespace
}  // namespace pgshift::routing
