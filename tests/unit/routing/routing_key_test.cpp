#include "routing/routing_key.hpp"

#include <gtest/gtest.h>

namespace pgshift::routing {
namespace {

TEST(UrlDecode, Sequences) {
  EXPECT_EQ(url_decode("%2Fabc"), "/abc");
  EXPECT_EQ(url_decode("a%20b"), "a b");
  EXPECT_EQ(url_decode("a+b"), "a+b");
  EXPECT_EQ(url_decode("%e2%82%ac"), "\xE2\x82\xAC");
  EXPECT_EQ(url_decode("100%"), "100%");  // malformed escapes stay literal
  EXPECT_EQ(url_decode("%zz%4"), "%zz%4");
  EXPECT_EQ(url_decode("%27"), "'");
  EXPECT_EQ(url_decode(""), "");
}

TEST(Sqlcommenter, Variants) {
  EXPECT_EQ(parse_sqlcommenter("/* user_id='42' */", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("/*user_id='42'*/", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("user_id='42'", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("/* user_id = '42' */", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("/* user_id=\"42\" */", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("/* user_id=42 */", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("-- user_id='42'", "user_id"), "42");
  EXPECT_EQ(parse_sqlcommenter("/* user_id='%2Fabc' */", "user_id"), "/abc");
  EXPECT_EQ(parse_sqlcommenter("/* user_id='a%2Cb' */", "user_id"), "a,b");
  EXPECT_EQ(parse_sqlcommenter("/* user_id='it\\'s' */", "user_id"), "it's");
  EXPECT_EQ(parse_sqlcommenter("/* user_id='a,b' */", "user_id"), "a,b");  // tolerant
}

TEST(Sqlcommenter, MultiplePairs) {
  const std::string_view c =
      "/*action='%2Fparam*d',controller='index',framework='spring',"
      "traceparent='00-5bd66ef5095369c7b0d1f8f4bd33716a-c532cb4098ac3dd2-01',"
      "tracestate='congo%3Dt61rcWkgMzE%2Crojo%3D00f067aa0ba902b7',user_id='u-7'*/";
  EXPECT_EQ(parse_sqlcommenter(c, "user_id"), "u-7");
  EXPECT_EQ(parse_sqlcommenter(c, "action"), "/param*d");
  EXPECT_EQ(parse_sqlcommenter(c, "tracestate"), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
  EXPECT_EQ(parse_sqlcommenter(c, "route"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("/* a='1' , user_id='2' , b='3' */", "user_id"), "2");
  EXPECT_EQ(parse_sqlcommenter("/* user%5Fid='9' */", "user_id"), "9");  // keys are encoded too
}

TEST(Sqlcommenter, AbsentOrEmpty) {
  EXPECT_EQ(parse_sqlcommenter("/* user_id='' */", "user_id"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("/* user_id= */", "user_id"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("/* user_id */", "user_id"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("/* xuser_id='1' */", "user_id"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("/* USER_ID='1' */", "user_id"), std::nullopt);  // exact keys
  EXPECT_EQ(parse_sqlcommenter("/* just a comment */", "user_id"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("", "user_id"), std::nullopt);
  EXPECT_EQ(parse_sqlcommenter("/* user_id='unterminated", "user_id"), "unterminated");
}

TEST(KeyFromComment, AnywhereInTheText) {
  EXPECT_EQ(key_from_comment("SELECT 1 /* user_id='42' */", "user_id"), "42");
  EXPECT_EQ(key_from_comment("/* user_id='42' */ SELECT 1", "user_id"), "42");
  EXPECT_EQ(key_from_comment("SELECT /* user_id='1' */ 1 /* user_id='2' */", "user_id"), "1");
  EXPECT_EQ(key_from_comment("SELECT 1 /* other */ /* user_id='2' */", "user_id"), "2");
  EXPECT_EQ(key_from_comment("SELECT '/* user_id=''1'' */'", "user_id"), std::nullopt);
  EXPECT_EQ(key_from_comment("SELECT $$ /* user_id='1' */ $$", "user_id"), std::nullopt);
  EXPECT_EQ(key_from_comment("SELECT 1 /* tenant='t' */", "tenant"), "t");
  EXPECT_EQ(key_from_comment("SELECT 1", "user_id"), std::nullopt);
}

TEST(KeyFromOptions, Forms) {
  EXPECT_EQ(key_from_options("-c pgshift.routing_key=42", "pgshift.routing_key"), "42");
  EXPECT_EQ(key_from_options("-cpgshift.routing_key=42", "pgshift.routing_key"), "42");
  EXPECT_EQ(key_from_options("--pgshift.routing_key=42", "pgshift.routing_key"), "42");
  EXPECT_EQ(key_from_options("--pgshift.routing-key=42", "pgshift.routing_key"), "42");
  EXPECT_EQ(key_from_options("-c search_path=app -c pgshift.routing_key=7 -c work_mem=4MB",
                             "pgshift.routing_key"),
            "7");
  EXPECT_EQ(key_from_options("-c PGSHIFT.ROUTING_KEY=7", "pgshift.routing_key"), "7");
  EXPECT_EQ(key_from_options("-c pgshift.routing_key=a\\ b", "pgshift.routing_key"), "a b");
  EXPECT_EQ(
      key_from_options("-c pgshift.routing_key=1 -c pgshift.routing_key=2", "pgshift.routing_key"),
      "2");
  EXPECT_EQ(key_from_options("  -c   pgshift.routing_key=x=y  ", "pgshift.routing_key"), "x=y");
  EXPECT_EQ(key_from_options("-c search_path=app", "pgshift.routing_key"), std::nullopt);
  EXPECT_EQ(key_from_options("-c", "pgshift.routing_key"), std::nullopt);
  EXPECT_EQ(key_from_options("-c pgshift.routing_key", "pgshift.routing_key"), std::nullopt);
  EXPECT_EQ(key_from_options("-c pgshift.routing_key=", "pgshift.routing_key"), std::nullopt);
  EXPECT_EQ(key_from_options("", "pgshift.routing_key"), std::nullopt);
  EXPECT_EQ(key_from_options("pgshift.routing_key=1", "pgshift.routing_key"), std::nullopt);
}

TEST(KeyFromStartup, ParameterThenOptions) {
  config::RoutingKey cfg;  // defaults: startup_parameter and setting pgshift.routing_key
  EXPECT_EQ(key_from_startup({{"user", "app"}, {"pgshift.routing_key", "42"}}, cfg), "42");
  EXPECT_EQ(key_from_startup({{"user", "app"}, {"options", "-c pgshift.routing_key=9"}}, cfg), "9");
  EXPECT_EQ(key_from_startup(
                {{"options", "-c pgshift.routing_key=9"}, {"pgshift.routing_key", "42"}}, cfg),
            "42");
  EXPECT_EQ(key_from_startup({{"user", "app"}, {"database", "db"}}, cfg), std::nullopt);
  EXPECT_EQ(key_from_startup({{"pgshift.routing_key", ""}}, cfg), std::nullopt);
  cfg.startup_parameter = "app.user";
  cfg.setting = "app.user";
  EXPECT_EQ(key_from_startup({{"app.user", "u1"}}, cfg), "u1");
  EXPECT_EQ(key_from_startup({{"options", "-c app.user=u2"}}, cfg), "u2");
  EXPECT_EQ(key_from_startup({{"pgshift.routing_key", "42"}}, cfg), std::nullopt);
}

TEST(KeyState, Precedence) {
  KeyState s("startup-key", "conn-1");
  EXPECT_EQ(s.resolve(std::nullopt).key, "startup-key");
  EXPECT_EQ(s.resolve(std::nullopt).source, KeySource::startup);

  s.apply({RoutingKeyChange::Kind::set, "session-key", false});
  EXPECT_EQ(s.resolve(std::nullopt).key, "session-key");
  EXPECT_EQ(s.resolve(std::nullopt).source, KeySource::session_setting);

  const ResolvedKey c = s.resolve(std::string("comment-key"));
  EXPECT_EQ(c.key, "comment-key");
  EXPECT_EQ(c.source, KeySource::comment);
  EXPECT_EQ(s.resolve(std::string("")).key, "session-key");  // empty comment value: absent

  s.apply({RoutingKeyChange::Kind::reset, "", false});
  EXPECT_EQ(s.resolve(std::nullopt).key, "startup-key");

  KeyState none(std::nullopt, "conn-2");
  EXPECT_EQ(none.resolve(std::nullopt).key, "conn-2");
  EXPECT_EQ(none.resolve(std::nullopt).source, KeySource::connection);
  KeyState empty_startup(std::string(""), "conn-3");
  EXPECT_EQ(empty_startup.resolve(std::nullopt).key, "conn-3");
}

TEST(KeyState, SetLocalLastsOneTransaction) {
  KeyState s(std::nullopt, "conn");
  s.apply({RoutingKeyChange::Kind::set, "session", false});
  s.apply({RoutingKeyChange::Kind::set, "local", true});
  EXPECT_EQ(s.resolve(std::nullopt).key, "local");
  EXPECT_EQ(s.resolve(std::nullopt).source, KeySource::transaction_setting);
  s.end_transaction();
  EXPECT_EQ(s.resolve(std::nullopt).key, "session");

  // SET LOCAL ... TO DEFAULT hides the session value for the transaction.
  s.apply({RoutingKeyChange::Kind::reset, "", true});
  EXPECT_EQ(s.resolve(std::nullopt).key, "conn");
  s.end_transaction();
  EXPECT_EQ(s.resolve(std::nullopt).key, "session");

  // A session SET after SET LOCAL in the same transaction wins, and survives the end.
  s.apply({RoutingKeyChange::Kind::set, "local", true});
  s.apply({RoutingKeyChange::Kind::set, "session2", false});
  EXPECT_EQ(s.resolve(std::nullopt).key, "session2");
  s.end_transaction();
  EXPECT_EQ(s.resolve(std::nullopt).key, "session2");
  EXPECT_EQ(s.session_key(), "session2");
}

TEST(KeyState, SourcesToString) {
  EXPECT_EQ(to_string(KeySource::comment), "comment");
  EXPECT_EQ(to_string(KeySource::connection), "connection");
}

}  // namespace
}  // namespace pgshift::routing
