// client_auth.hba_file: the pg_hba.conf subset (config/hba.hpp): parsing, every error with
// file:line, first-match semantics, and the YAML side (check-config's errors, users_file).
#include "config/hba.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/load.hpp"
#include "test_util.hpp"

namespace pgshift::config {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

std::shared_ptr<const HbaFile> parse_ok(const std::string& text) {
  auto r = parse_hba(text, "pg_hba.conf");
  EXPECT_TRUE(r.errors.empty()) << r.errors.front();
  return r.hba;
}

std::string only_error(const std::string& text) {
  auto r = parse_hba(text, "pg_hba.conf");
  EXPECT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.hba, nullptr);
  return r.errors.empty() ? "" : r.errors.front();
}

HbaRequest req(std::string_view user, std::string_view db, const char* address, bool ssl = false) {
  HbaRequest r{.user = user,
               .database = db,
               .address = *IpAddress::parse(address),
               .ssl = ssl,
               .physical_replication = false};
  return r;
}

// The line of the matching rule, 0 for none.
int line_for(const HbaFile& hba, const HbaRequest& r) {
  const HbaRule* rule = hba.match(r);
  return rule ? rule->line : 0;
}

TEST(Hba, ParsesTheSubset) {
  auto hba = parse_ok(
      "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
      "\n"
      "host    all       monitor   127.0.0.1/32      trust   # trailing comment\n"
      "hostssl app,\"All\"  app_rw, app_ro   10.0.0.0 255.0.0.0  scram-sha-256\n"
      "hostnossl sameuser all  ::1/128  md5\r\n"
      "host replication repl  all  reject\n"
      "hostnogssenc all all 0.0.0.0/0 scram-sha-256\n"
      "hostgssenc all all all trust");
  ASSERT_TRUE(hba);
  ASSERT_EQ(hba->rules.size(), 6u);
  const HbaRule& r1 = hba->rules[0];
  EXPECT_EQ(r1.line, 3);
  EXPECT_EQ(r1.type, HbaConnType::host);
  EXPECT_EQ(r1.method, HbaMethod::trust);
  ASSERT_EQ(r1.databases.size(), 1u);
  EXPECT_TRUE(r1.databases[0].keyword);
  const HbaRule& r2 = hba->rules[1];
  EXPECT_EQ(r2.line, 4);
  ASSERT_EQ(r2.databases.size(), 2u);
  EXPECT_EQ(r2.databases[1].name, "All");
  EXPECT_FALSE(r2.databases[1].keyword);  // quoted: a name, not the keyword
  ASSERT_EQ(r2.users.size(), 2u);
  EXPECT_EQ(r2.users[1].name, "app_ro");  // "a, b": the comma continues the list
  EXPECT_EQ(r2.mask.to_string(), "255.0.0.0");
  EXPECT_EQ(hba->rules[2].address.to_string(), "::1");
  EXPECT_EQ(hba->rules[3].method, HbaMethod::reject);
  EXPECT_TRUE(hba->rules[5].any_address);
  EXPECT_TRUE(hba->needs_passwords());
  EXPECT_FALSE(parse_ok("host all all all trust\nhost all all all reject")->needs_passwords());
}

TEST(Hba, FirstMatchWins) {
  auto hba = parse_ok(
      "host    all  monitor  127.0.0.1/32  trust\n"            // 1
      "host    all  monitor  all           reject\n"           // 2
      "hostssl all  app      10.0.0.0/8    scram-sha-256\n"    // 3
      "hostnossl all app     10.1.0.0/16   md5\n"              // 4
      "host    \"all\" all   ::/0          md5\n"              // 5: only the database "all"
      "host    sameuser all  192.168.0.0 255.255.0.0 trust\n"  // 6
      "host    db1,db2 bob   0.0.0.0/0     scram-sha-256\n");  // 7
  EXPECT_EQ(line_for(*hba, req("monitor", "x", "127.0.0.1")), 1);
  EXPECT_EQ(line_for(*hba, req("monitor", "x", "::ffff:127.0.0.1")), 1);  // v4-mapped = v4
  EXPECT_EQ(line_for(*hba, req("monitor", "x", "127.0.0.2")), 2);
  EXPECT_EQ(line_for(*hba, req("app", "x", "10.1.2.3", true)), 3);
  EXPECT_EQ(line_for(*hba, req("app", "x", "10.1.2.3", false)), 4);
  EXPECT_EQ(line_for(*hba, req("app", "x", "10.2.2.3", false)), 0);
  EXPECT_EQ(line_for(*hba, req("app", "all", "::1")), 5);
  EXPECT_EQ(line_for(*hba, req("app", "other", "::1")), 0);
  EXPECT_EQ(line_for(*hba, req("carol", "carol", "192.168.7.1")), 6);
  EXPECT_EQ(line_for(*hba, req("carol", "dave", "192.168.7.1")), 0);
  EXPECT_EQ(line_for(*hba, req("bob", "db2", "8.8.8.8")), 7);
  EXPECT_EQ(line_for(*hba, req("bob", "db3", "8.8.8.8")), 0);
  EXPECT_EQ(line_for(*hba, req("Bob", "db1", "8.8.8.8")), 0);  // names are case-sensitive
  // IPv4 rules never match IPv6 clients and the other way round.
  EXPECT_EQ(line_for(*hba, req("bob", "db1", "::2")), 0);
}

TEST(Hba, ReplicationKeyword) {
  auto hba = parse_ok(
      "host replication repl 127.0.0.1/32 trust\n"
      "host all all 127.0.0.1/32 reject\n");
  HbaRequest physical = req("repl", "whatever", "127.0.0.1");
  physical.physical_replication = true;
  EXPECT_EQ(line_for(*hba, physical), 1);
  EXPECT_EQ(line_for(*hba, req("repl", "replication", "127.0.0.1")), 2);  // a database name
  auto all_only = parse_ok("host all all all trust\n");
  EXPECT_EQ(all_only->match(physical), nullptr);  // `all` does not cover replication
}

TEST(Hba, IpAddresses) {
  EXPECT_TRUE(IpAddress::parse("10.0.0.1")->v4);
  EXPECT_FALSE(IpAddress::parse("fe80::1")->v4);
  EXPECT_TRUE(IpAddress::parse("::ffff:10.0.0.1")->v4);
  EXPECT_EQ(IpAddress::parse("::ffff:10.0.0.1")->to_string(), "10.0.0.1");
  EXPECT_FALSE(IpAddress::parse("db.example.com"));
  EXPECT_FALSE(IpAddress::parse(""));
  auto hba = parse_ok("host all all 2001:db8::/32 trust\nhost all all 10.0.0.0/0 reject\n");
  EXPECT_EQ(line_for(*hba, req("a", "b", "2001:db8:ffff::1")), 1);
  EXPECT_EQ(line_for(*hba, req("a", "b", "2001:db9::1")), 0);
  EXPECT_EQ(line_for(*hba, req("a", "b", "1.2.3.4")), 2);  // /0: every IPv4 address
}

TEST(Hba, EveryErrorNamesFileAndLine) {
  EXPECT_THAT(only_error("host all all 127.0.0.1/32 trust\nlocal all all trust\n"),
              AllOf(HasSubstr("pg_hba.conf:2: "), HasSubstr("'local' rules are not supported")));
  EXPECT_THAT(only_error("hots all all all trust"),
              AllOf(HasSubstr("pg_hba.conf:1: "), HasSubstr("invalid connection type 'hots'")));
  EXPECT_THAT(only_error("host all +admins all trust"),
              HasSubstr("group membership (+role) is not supported"));
  EXPECT_THAT(only_error("host @dbs all all trust"), HasSubstr("@file inclusion"));
  EXPECT_THAT(only_error("host all @users all trust"), HasSubstr("@file inclusion"));
  EXPECT_THAT(only_error("host samerole all all trust"), HasSubstr("'samerole' is not supported"));
  EXPECT_THAT(only_error("host all /^a all trust"), HasSubstr("regular expressions"));
  EXPECT_THAT(only_error("host all all samehost trust"), HasSubstr("'samehost' is not supported"));
  EXPECT_THAT(only_error("host all all db.example.com trust"),
              HasSubstr("host names are not supported"));
  EXPECT_THAT(only_error("host all all 10.0.0.0/33 trust"), HasSubstr("invalid CIDR mask"));
  EXPECT_THAT(only_error("host all all 10.0.0.0/x trust"), HasSubstr("invalid CIDR mask"));
  EXPECT_THAT(only_error("host all all 10.0.0.1 trust"),
              HasSubstr("IP address '10.0.0.1' has no mask; write it as CIDR (e.g. 10.0.0.1/32)"));
  EXPECT_THAT(only_error("host all all 10.0.0.1"), HasSubstr("end-of-line before"));
  EXPECT_THAT(only_error("host all all 10.0.0.0 255.0.255.0 trust"), HasSubstr("invalid IP mask"));
  EXPECT_THAT(only_error("host all all 10.0.0.0 ffff:: trust"), HasSubstr("invalid IP mask"));
  EXPECT_THAT(only_error("host all all all"), HasSubstr("end-of-line before authentication"));
  EXPECT_THAT(only_error("host all all all peer"),
              HasSubstr("authentication method 'peer' is not supported"));
  EXPECT_THAT(only_error("host all all all password"), HasSubstr("'password' is not supported"));
  EXPECT_THAT(only_error("host all all all md5 clientcert=verify-full"),
              HasSubstr("authentication options"));
  EXPECT_THAT(only_error("host all all all md5,trust"), HasSubstr("multiple values"));
  EXPECT_THAT(only_error("host all \"al all trust"), HasSubstr("unterminated quoted string"));
  EXPECT_THAT(only_error("host all a,,b all trust"), HasSubstr("empty item"));
  EXPECT_THAT(only_error("# only comments\n\n"), HasSubstr("no rules"));
  // Every bad line is reported, not just the first.
  auto r = parse_hba("local all all trust\nhost all all all trust\nhost x y z w\n", "f");
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_THAT(r.errors[0], HasSubstr("f:1: "));
  EXPECT_THAT(r.errors[1], HasSubstr("f:3: "));
}

std::string yaml_with(const std::string& client_auth) {
  return "admin: { enabled: false }\n"
         "client_auth:\n" +
         client_auth +
         "routes:\n"
         "  - name: main\n"
         "    client_database: \"*\"\n"
         "    source: { host: db, user: u, password: p }\n";
}

TEST(HbaConfig, CheckConfigReportsTheFileAndLine) {
  test::TempDir dir;
  dir.write("pg_hba.conf", "host all all 127.0.0.1/32 trust\nhost all all all peer\n");
  dir.write("users.txt", "\"app\" \"pw\"\n");
  auto path = dir.write("pgshift.yaml", yaml_with("  hba_file: pg_hba.conf\n"
                                                  "  users_file: users.txt\n"));
  auto r = load_file(path);
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u) << test::dump(r.errors);
  EXPECT_EQ(r.errors[0].path, "client_auth.hba_file");
  EXPECT_EQ(r.errors[0].line, 3);
  EXPECT_THAT(r.errors[0].message, AllOf(HasSubstr((dir.path() / "pg_hba.conf").string() + ":2: "),
                                         HasSubstr("'peer' is not supported")));
}

TEST(HbaConfig, UsersFileRequiredOnlyForPasswordRules) {
  test::TempDir dir;
  dir.write("trust.conf", "host all all 127.0.0.1/32 trust\nhost all all all reject\n");
  dir.write("scram.conf", "host all all all scram-sha-256\n");
  // Trust and reject only: no users file needed, whatever `method` says.
  EXPECT_TRUE(load_file(dir.write("a.yaml", yaml_with("  hba_file: trust.conf\n"))).ok());
  auto r = load_file(dir.write("b.yaml", yaml_with("  method: trust\n"
                                                   "  hba_file: scram.conf\n")));
  ASSERT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 1u) << test::dump(r.errors);
  EXPECT_EQ(r.errors[0].path, "client_auth.users_file");
  EXPECT_THAT(r.errors[0].message, HasSubstr("has md5 or scram-sha-256 rules"));
  auto missing = load_file(dir.write("c.yaml", yaml_with("  hba_file: nope.conf\n")));
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.errors[0].message, HasSubstr("nope.conf"));
}

TEST(HbaConfig, ThrottleKeys) {
  test::TempDir dir;
  dir.write("users.txt", "\"app\" \"pw\"\n");
  auto r = load_file(dir.write("a.yaml", yaml_with("  users_file: users.txt\n"
                                                   "  throttle:\n"
                                                   "    failures_burst: 3\n"
                                                   "    user_failures_burst: 0\n"
                                                   "    failure_interval_ms: 250\n"
                                                   "    max_delay_ms: 0\n")));
  ASSERT_TRUE(r.ok()) << test::dump(r.errors);
  const auto& t = r.config->client_auth.throttle;
  EXPECT_TRUE(t.enabled);
  EXPECT_EQ(t.failures_burst, 3);
  EXPECT_EQ(t.user_failures_burst, 0);
  EXPECT_EQ(t.failure_interval.count(), 250);
  EXPECT_EQ(t.max_delay.count(), 0);
  EXPECT_EQ(t.max_tracked, 10000);
  auto bad = load_file(dir.write("b.yaml", yaml_with("  users_file: users.txt\n"
                                                     "  throttle: { failures_burst: 0 }\n")));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.errors[0].path, "client_auth.throttle.failures_burst");
}

}  // namespace
}  // namespace pgshift::config
