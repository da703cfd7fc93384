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

// The multiplexed relay forgets a server's prepared statements after these (was a
// first-word check that also took DISCARD TEMP and DEALLOCATE of one name).
TEST(DatabaseDdlTest, StatementsThatDropPreparedStatements) {
  EXPECT_TRUE(drops_prepared_statements("DISCARD ALL"));
  EXPECT_TRUE(drops_prepared_statements("discard all;"));
  EXPECT_TRUE(drops_prepared_statements(" \t\r\n  DiScArD aLl"));
  EXPECT_TRUE(drops_prepared_statements("DEALLOCATE ALL"));
  EXPECT_TRUE(drops_prepared_statements("deallocate prepare all"));
  EXPECT_TRUE(drops_prepared_statements("/* reset */ -- pool\n DISCARD /* x */ ALL"));
  EXPECT_TRUE(drops_prepared_statements("SELECT 1; DISCARD ALL"));
  EXPECT_TRUE(drops_prepared_statements("SET x = 1; deallocate all; SELECT 2"));
  EXPECT_FALSE(drops_prepared_statements("DISCARD PLANS"));
  EXPECT_FALSE(drops_prepared_statements("DISCARD TEMP"));
  EXPECT_FALSE(drops_prepared_statements("DEALLOCATE q"));
  EXPECT_FALSE(drops_prepared_statements("DEALLOCATE PREPARE q"));
  EXPECT_FALSE(drops_prepared_statements("DEALLOCATE \"all\""));  // a statement named all
  EXPECT_FALSE(drops_prepared_statements("\"discard\" all"));
  EXPECT_FALSE(drops_prepared_statements("-- DISCARD ALL\nSELECT 1"));
  EXPECT_FALSE(drops_prepared_statements("/* DEALLOCATE ALL */ SELECT 1"));
  EXPECT_FALSE(drops_prepared_statements("SELECT 'DISCARD ALL'"));
  EXPECT_FALSE(drops_prepared_statements("SELECT $$; DISCARD ALL$$"));
  EXPECT_FALSE(drops_prepared_statements("SELECT discard FROM all_things"));
  EXPECT_FALSE(drops_prepared_statements("DISCARD"));
  EXPECT_FALSE(drops_prepared_statements(""));
}

}  // namespace
}  // namespace pgshift::routing
