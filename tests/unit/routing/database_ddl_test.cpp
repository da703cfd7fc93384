// databases_needing_exclusive_access (issue 14.2): which databases a statement needs free of
// other sessions, found with the lexer, never by a first-word check.
#include "routing/database_ddl.hpp"

#include <gtest/gtest.h>

namespace pgshift::routing {
namespace {

using Names = std::vector<std::string>;

TEST(DatabaseDdlTest, DropAlterCreate) {
  EXPECT_EQ(databases_needing_exclusive_access("DROP DATABASE x"), Names{"x"});
  EXPECT_EQ(databases_needing_exclusive_access("drop database if exists X with (force)"),
            Names{"x"});
  EXPECT_EQ(databases_needing_exclusive_access(R"(DROP DATABASE "My""Db";)"), Names{"My\"Db"});
  EXPECT_EQ(databases_needing_exclusive_access("ALTER DATABASE old RENAME TO new"), Names{"old"});
  EXPECT_EQ(databases_needing_exclusive_access("alter database d set tablespace t"), Names{"d"});
  EXPECT_EQ(databases_needing_exclusive_access("CREATE DATABASE y"), Names{"template1"});
  EXPECT_EQ(databases_needing_exclusive_access("CREATE DATABASE y WITH TEMPLATE = src OWNER a"),
            Names{"src"});
  EXPECT_EQ(databases_needing_exclusive_access("create database y template \"Src\""), Names{"Src"});
  EXPECT_EQ(databases_needing_exclusive_access("CREATE DATABASE template TEMPLATE DEFAULT"),
            Names{"template1"});
  EXPECT_EQ(databases_needing_exclusive_access("CREATE DATABASE template"), Names{"template1"});
}

TEST(DatabaseDdlTest, CommentsLiteralsAndOtherStatements) {
  EXPECT_EQ(databases_needing_exclusive_access("/* c */ -- x\n DROP /* y */ DATABASE z"),
            Names{"z"});
  EXPECT_EQ(databases_needing_exclusive_access("SELECT 1; DROP DATABASE a; DROP DATABASE b"),
            (Names{"a", "b"}));
  EXPECT_TRUE(databases_needing_exclusive_access("SELECT 'DROP DATABASE x'").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("SELECT $$; DROP DATABASE x$$").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("-- DROP DATABASE x").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("DROP TABLE database").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("ALTER DATABASE d SET work_mem = 1").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("ALTER DATABASE d OWNER TO u").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("DROP DATABASE").empty());
  EXPECT_TRUE(databases_needing_exclusive_access("").empty());
}

TEST(DatabaseDdlTest, StatementsThatOutliveDiscardAll) {
  EXPECT_TRUE(outlives_discard_all("PREPARE TRANSACTION 'x'"));
  EXPECT_TRUE(outlives_discard_all("begin; insert into t values (1); prepare transaction 'x'"));
  EXPECT_TRUE(outlives_discard_all("COMMIT PREPARED 'x'"));
  EXPECT_TRUE(outlives_discard_all("rollback prepared 'x'"));
  EXPECT_TRUE(outlives_discard_all("/* c */ LOAD 'auto_explain'"));
  EXPECT_FALSE(outlives_discard_all("PREPARE q AS SELECT 1"));
  EXPECT_FALSE(outlives_discard_all("COMMIT"));
  EXPECT_FALSE(outlives_discard_all("SELECT 'prepare transaction'"));
  EXPECT_FALSE(outlives_discard_all("SELECT load FROM t"));
}

}  // namespace
}  // namespace pgshift::routing
