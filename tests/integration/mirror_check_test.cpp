// `pgshift sync check` with sync.mode: mirror (issue 12, item 2): tables whose writes cannot
// be replayed faithfully (serial / identity / volatile defaults, user triggers) are listed,
// plain tables are not, and the logical-replication prerequisites are not failures. One
// PostgreSQL 15 cluster with wal_level=replica (the default, which logical mode refuses);
// source and target are two databases on it.
#include "proxy/migrate/mirror_check.hpp"

#include <gtest/gtest.h>

#include "routing/mirror_safety.hpp"
#include "tests/support/support.hpp"

namespace pgshift::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "postgres-test-password";

PgCluster& cluster() {
  static PgCluster c{{.name = "mirror-check"}};
  return c;
}

std::string config_yaml(const std::string& extra) {
  ConfigSpec spec;
  RouteSpec route{.name = "shop",
                  .client_database = "msrc",
                  .source = upstream_of(cluster(), "", "msrc"),
                  .target = upstream_of(cluster(), "", "mtgt")};
  route.extra_yaml = extra;
  spec.routes.push_back(route);
  return spec.to_yaml();
}

CommandResult sync_check(const std::string& yaml) {
  PgshiftOptions o{.config_yaml = yaml, .users = users_file_text({{"postgres", kPassword}})};
  o.args = {"sync", "check", "shop", "--config", "{{config_file}}"};
  o.wait_ready = false;
  PgshiftProcess p(o);
  CommandResult r;
  auto st = p.process().wait_for(60s);
  r.timed_out = !st.has_value();
  r.exit_code = st ? st->shell_code() : -1;
  r.out = p.log();
  return r;
}

constexpr const char* kSchema =
    "CREATE TABLE plain (id int PRIMARY KEY, note text DEFAULT 'x', n int DEFAULT 2 + 3);"
    "CREATE TABLE orders (id serial PRIMARY KEY, created timestamptz NOT NULL DEFAULT now(), "
    "  note text);"
    "CREATE TABLE tokens (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "  token uuid DEFAULT gen_random_uuid());"
    "CREATE TABLE audit (at timestamptz, what text);"
    "CREATE TABLE notes (id int PRIMARY KEY, body text);"
    "CREATE FUNCTION log_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "  INSERT INTO audit VALUES (clock_timestamp(), NEW.body); RETURN NEW; END $$;"
    "CREATE TRIGGER notes_audit AFTER INSERT ON notes FOR EACH ROW EXECUTE FUNCTION log_note();";

class MirrorCheck : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* db : {"msrc", "mtgt"}) {
      cluster().exec(std::string("DROP DATABASE IF EXISTS ") + db + " WITH (FORCE)");
      cluster().exec(std::string("CREATE DATABASE ") + db);
      cluster().exec(kSchema, db);
    }
  }
};

bool has_line(const std::string& out, const std::string& start, const std::string& part) {
  std::size_t pos = 0;
  while ((pos = out.find(start, pos)) != std::string::npos) {
    const std::size_t end = out.find('\n', pos);
    if (out.substr(pos, end - pos).find(part) != std::string::npos) return true;
    ++pos;
  }
  return false;
}

TEST_F(MirrorCheck, UnsafeTablesAreListedPlainOnesAreNot) {
  auto r = sync_check(config_yaml("sync:\n  mode: mirror\n"));
  ASSERT_FALSE(r.timed_out) << r.out;
  EXPECT_EQ(r.exit_code, 0) << r.out;  // warnings only: mirroring may still start
  const std::string w = "warning [source] table ";
  EXPECT_TRUE(has_line(r.out, w + "public.orders cannot be mirrored",
                       "id nextval('orders_id_seq'::regclass)"))
      << r.out;
  EXPECT_TRUE(has_line(r.out, w + "public.orders", "created now()")) << r.out;
  EXPECT_TRUE(has_line(r.out, w + "public.orders", "[serial_default,volatile_default]")) << r.out;
  EXPECT_TRUE(has_line(r.out, w + "public.tokens", "id GENERATED ALWAYS AS IDENTITY")) << r.out;
  EXPECT_TRUE(has_line(r.out, w + "public.tokens", "[identity_default,volatile_default]")) << r.out;
  EXPECT_TRUE(has_line(r.out, w + "public.notes", "triggers run again on the target")) << r.out;
  EXPECT_TRUE(has_line(r.out, w + "public.notes", "(notes_audit) [trigger]")) << r.out;
  EXPECT_EQ(r.out.find("table public.plain"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("table public.audit cannot"), std::string::npos) << r.out;
  // A table without a key only matters to verify here: a warning, not a blocker.
  EXPECT_NE(r.out.find("warning [source] table public.audit has no primary key"), std::string::npos)
      << r.out;
  // What mirror mode never sees, and when logical mode is better.
  EXPECT_NE(r.out.find("writes that bypass it"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("pgshift verify finds the rows they changed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sync.mode: logical is preferred"), std::string::npos) << r.out;
  // wal_level=replica is not a failure in mirror mode.
  EXPECT_EQ(r.out.find("BLOCKER"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("wal_level is 'replica'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("are not needed"), std::string::npos) << r.out;
}

TEST_F(MirrorCheck, OnlyTheListedPlainTableIsClean) {
  auto r = sync_check(config_yaml("sync:\n  mode: mirror\n  tables: [plain, audit]\n"));
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("ok [source] no serial, identity or volatile default and no user trigger "
                       "in the 2 table(s)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("cannot be mirrored"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("logical is preferred"), std::string::npos) << r.out;
}

TEST_F(MirrorCheck, LogicalModeStillRequiresLogicalWal) {
  // The same route in logical mode: wal_level=replica blocks, and no mirror findings.
  auto r = sync_check(config_yaml("sync:\n  mode: logical\n"));
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_NE(r.out.find("BLOCKER [source] wal_level is 'replica'"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("cannot be mirrored"), std::string::npos) << r.out;
}

// The catalog feeds the classifier's schema hook: statements on the risky tables are flagged
// for what they leave to the replay, statements on plain tables are not.
TEST_F(MirrorCheck, CatalogFeedsTheClassifierSchemaHook) {
  pgclient::ConnInfo info;
  info.host = cluster().host();
  info.port = cluster().port();
  info.dbname = "msrc";
  info.user = cluster().superuser();
  info.password = cluster().superuser_password();
  auto conn = pgclient::Connection::connect(info);
  std::vector<migrate::TableRef> tables{{"public", "audit"},
                                        {"public", "notes"},
                                        {"public", "orders"},
                                        {"public", "plain"},
                                        {"public", "tokens"}};
  const auto reports = migrate::mirror_table_risks(conn, tables);
  ASSERT_EQ(reports.size(), 3u);  // notes, orders, tokens
  const routing::MirrorSchema schema = migrate::mirror_schema(reports);
  auto reasons = [&](std::string_view sql) {
    return routing::classify_mirror_safety(sql, &schema).reasons.to_string();
  };
  EXPECT_EQ(reasons("INSERT INTO orders (note) VALUES ('x')"), "serial_default,volatile_default");
  EXPECT_EQ(reasons("INSERT INTO orders (id, created, note) VALUES (7, $1, 'x')"), "");
  EXPECT_EQ(reasons("INSERT INTO tokens (token) VALUES ($1)"), "identity_default");
  EXPECT_EQ(reasons("INSERT INTO notes (id, body) VALUES (1, 'x')"), "trigger");
  EXPECT_EQ(reasons("INSERT INTO plain (id) VALUES (1)"), "");  // constant defaults
  EXPECT_EQ(reasons("UPDATE plain SET note = now()"), "volatile_function");
}

}  // namespace
}  // namespace pgshift::test
