// proxy/session/mirror_settings: which statements change a session's settings for the mirror's
// replay, the values as PostgreSQL flattens them, and when they take effect (commit, error,
// rollback, pipelined answers, ParameterStatus).
#include "proxy/session/mirror_settings.hpp"

#include <gtest/gtest.h>

#include "proxy/session/mirror_capture.hpp"
#include "routing/mirror_safety.hpp"

namespace pgshift::proxy {
namespace {

using Kind = SettingChange::Kind;

std::string describe(const std::vector<SettingChange>& changes) {
  std::string out;
  for (const auto& c : changes) {
    if (!out.empty()) out += " | ";
    switch (c.kind) {
      case Kind::set:
        out += "set " + c.name + "=" + c.value;
        break;
      case Kind::reset:
        out += "reset " + c.name;
        break;
      case Kind::reset_all:
        out += "reset all";
        break;
      case Kind::reported:
        out += "reported " + c.name;
        break;
      case Kind::refused:
        out += "refused " + c.name;
        break;
    }
  }
  return out;
}

TEST(MirrorSettingsParse, SetForms) {
  EXPECT_EQ(describe(parse_setting_changes("SET search_path TO s2, public")),
            "set search_path=s2, public");
  EXPECT_EQ(describe(parse_setting_changes("set SESSION search_path = \"S2\", 'My Schema'")),
            "set search_path=\"S2\", \"My Schema\"");
  EXPECT_EQ(describe(parse_setting_changes("SET search_path TO \"$user\", public")),
            "set search_path=\"$user\", public");
  EXPECT_EQ(describe(parse_setting_changes("SET SCHEMA 'Billing'")), "set search_path=\"Billing\"");
  EXPECT_EQ(describe(parse_setting_changes("SET myapp.tenant = 42; SET work_mem TO '64MB'")),
            "set myapp.tenant=42 | set work_mem=64MB");
  EXPECT_EQ(describe(parse_setting_changes("SET extra_float_digits = -1")),
            "set extra_float_digits=-1");
  EXPECT_EQ(describe(parse_setting_changes("SET search_path TO DEFAULT")), "reset search_path");
  EXPECT_EQ(describe(parse_setting_changes("SET TIME ZONE 'Europe/Paris'; SET NAMES 'UTF8'")),
            "reported timezone | reported client_encoding");
  EXPECT_EQ(describe(parse_setting_changes("SET DateStyle = 'ISO, DMY'")), "reported datestyle");
  EXPECT_EQ(describe(parse_setting_changes("SET application_name = 'x'")), "");
}

TEST(MirrorSettingsParse, WhatIsNotASessionChange) {
  EXPECT_EQ(describe(parse_setting_changes("SET LOCAL search_path TO s2")), "");
  EXPECT_EQ(describe(parse_setting_changes("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")), "");
  EXPECT_EQ(describe(parse_setting_changes("SELECT 'SET search_path TO x' -- SET x = 1")), "");
  EXPECT_EQ(describe(parse_setting_changes("INSERT INTO t VALUES (1)")), "");
  EXPECT_EQ(describe(parse_setting_changes("SELECT set_config('search_path', 's2', true)")), "");
}

TEST(MirrorSettingsParse, ResetAndSetConfig) {
  EXPECT_EQ(describe(parse_setting_changes("RESET search_path; RESET ALL; RESET TIME ZONE")),
            "reset search_path | reset all | reported timezone");
  EXPECT_EQ(describe(parse_setting_changes("DISCARD ALL")), "reset all");
  EXPECT_EQ(
      describe(parse_setting_changes("SELECT pg_catalog.set_config('Search_Path', 's1', false)")),
      "set search_path=s1");
  EXPECT_EQ(describe(parse_setting_changes("SELECT set_config('search_path', $1, false)")),
            "refused set_config() with non-literal arguments");
}

TEST(MirrorSettingsParse, RefusedSettingsAreNamed) {
  EXPECT_EQ(describe(parse_setting_changes("SET session_replication_role = replica")),
            "refused SET session_replication_role");
  EXPECT_EQ(describe(parse_setting_changes("SET ROLE app; SET SESSION AUTHORIZATION app")),
            "refused SET ROLE | refused SET SESSION AUTHORIZATION");
  EXPECT_EQ(describe(parse_setting_changes("SET search_path TO E'a\\nb'")),
            "refused SET search_path (value not understood)");
}

TEST(MirrorSettingsOptions, CarriedSwitchesOnly) {
  const auto p = settings_from_options(
      "-c search_path=s1 -cTimeZone=UTC --datestyle=ISO -c log_connections=on "
      "-c myapp.tenant=a\\ b -e");
  pool::StartupParams want{
      {"search_path", "s1"}, {"timezone", "UTC"}, {"datestyle", "ISO"}, {"myapp.tenant", "a b"}};
  EXPECT_EQ(p, want);
}

pool::StartupParams current(const MirrorSettings& s) {
  return *s.current();
}

TEST(MirrorSettings, ChangesTakeEffectWhenTheirTransactionCommits) {
  MirrorSettings s({{"application_name", "app"}, {"timezone", "UTC"}}, "-c search_path=s1");
  const auto start = s.current();
  EXPECT_EQ(current(s), (pool::StartupParams{{"search_path", "s1"}, {"timezone", "UTC"}}));

  // Autocommit SET: at its ReadyForQuery.
  s.on_statement("SET search_path TO s2", 0);
  EXPECT_TRUE(s.changing());
  s.on_command_complete("SET");
  s.on_ready_for_query('I');
  EXPECT_EQ(current(s), (pool::StartupParams{{"search_path", "s2"}, {"timezone", "UTC"}}));

  // A failed one changes nothing.
  s.on_statement("SET search_path TO s3; SELECT 1/0", 0);
  s.on_error();
  s.on_ready_for_query('I');
  EXPECT_EQ(current(s)[0].second, "s2");

  // In a block: only at a COMMIT; a ROLLBACK drops it.
  s.on_statement("SET search_path TO s4", 0);
  s.on_ready_for_query('T');
  EXPECT_EQ(current(s)[0].second, "s2");
  s.on_command_complete("ROLLBACK");
  s.on_ready_for_query('I');
  EXPECT_EQ(current(s)[0].second, "s2");
  s.on_statement("SET search_path TO s5", 0);
  s.on_ready_for_query('T');
  s.on_command_complete("COMMIT");
  s.on_ready_for_query('I');
  EXPECT_EQ(current(s)[0].second, "s5");

  // RESET goes back to the startup value (a new object, equal to the first).
  s.on_statement("RESET search_path", 0);
  s.on_ready_for_query('I');
  EXPECT_EQ(*s.current(), *start);
  EXPECT_FALSE(s.changing());
}

TEST(MirrorSettings, PipelinedAnswersAndReportedValues) {
  MirrorSettings s({}, "");
  const auto empty = s.current();
  // Two queries sent before any answer: the SET is answered by the second ReadyForQuery.
  s.on_statement("SET search_path TO s2", 1);
  s.on_ready_for_query('I');
  EXPECT_EQ(s.current(), empty) << "the first answer is not the SET's";
  EXPECT_TRUE(s.changing());
  s.on_ready_for_query('I');
  EXPECT_EQ(current(s), (pool::StartupParams{{"search_path", "s2"}}));
  // Reported settings come from ParameterStatus, last value wins at the transaction's end.
  const std::string ps = std::string("TimeZone\0<-03>+03\0", 18);
  s.on_parameter_status({reinterpret_cast<const std::uint8_t*>(ps.data()), ps.size()});
  const std::string other = std::string("is_superuser\0on\0", 16);
  s.on_parameter_status({reinterpret_cast<const std::uint8_t*>(other.data()), other.size()});
  s.on_ready_for_query('I');
  EXPECT_EQ(current(s), (pool::StartupParams{{"search_path", "s2"}, {"timezone", "<-03>+03"}}));
  // Nothing changed: the same object, so the mirror compares by address.
  const auto before = s.current();
  s.on_ready_for_query('I');
  EXPECT_EQ(s.current(), before);
}

// The capture's prefilter (mirror_capture.hpp) never hides a statement the classifier flags.
TEST(MirrorSafetyCandidate, EveryFlaggedStatementIsACandidate) {
  const char* flagged[] = {
      "INSERT INTO t VALUES (now())",
      "insert into h values (1, CURRENT_TIMESTAMP)",
      "UPDATE t SET at = localtimestamp(3)",
      "SELECT pg_catalog.Clock_Timestamp()",
      "INSERT INTO t VALUES ('now'::timestamptz)",
      "INSERT INTO t VALUES (timestamptz 'Today')",
      "INSERT INTO t VALUES (CAST('tomorrow' AS date)), ('yesterday'::date)",
      "INSERT INTO t VALUES (E'n\\ow'::timestamptz)",
      "SELECT \"now\"()",
      "INSERT INTO t VALUES (random(), gen_random_uuid(), x.uuid_generate_v4(), gen_salt('bf'))",
      "SELECT nextval('s'), currval('s'), setval('s', 1), lastval()",
      "SELECT txid_current(), pg_current_xact_id(), pg_backend_pid(), inet_client_addr()",
      "SELECT statement_timestamp(), transaction_timestamp(), timeofday(), current_date",
      "SELECT random_normal()",
  };
  for (const char* sql : flagged) {
    EXPECT_FALSE(routing::classify_mirror_safety(sql).safe()) << sql;
    EXPECT_TRUE(mirror_safety_candidate(sql)) << sql;
  }
  const char* plain[] = {
      "UPDATE pgbench_accounts SET abalance = abalance + -4210 WHERE aid = 3175",
      "SELECT abalance FROM pgbench_accounts WHERE aid = 3175",
      "BEGIN",
      "END",
      "INSERT INTO kv (k, v) VALUES ($1, $2)",
  };
  for (const char* sql : plain) {
    EXPECT_TRUE(routing::classify_mirror_safety(sql).safe()) << sql;
    EXPECT_FALSE(mirror_safety_candidate(sql)) << sql;
  }
}

}  // namespace
}  // namespace pgshift::proxy
