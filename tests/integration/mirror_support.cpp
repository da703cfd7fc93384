#include "tests/integration/mirror_support.hpp"

namespace pgshift::test {
namespace {
using namespace std::chrono_literals;
const auto* const mirror_env = SharedEnvironment<MirrorServers>::install();
}  // namespace

MirrorServers& servers() {
  return SharedEnvironment<MirrorServers>::get();
}

std::string config_yaml(const std::string& db, const std::string& mirror_yaml,
                        const std::string& pool_mode, const std::string& control) {
  ConfigSpec spec;
  spec.control = control;
  RouteSpec route{.name = db,
                  .client_database = db,
                  .source = upstream_of(servers().source, "", db),
                  .target = upstream_of(servers().target, "", db)};
  route.extra_yaml = "sync:\n  mode: mirror\n" + mirror_yaml;
  route.pool_mode = pool_mode;
  route.pool_size = 20;
  spec.routes.push_back(route);
  return spec.to_yaml();
}

PgshiftOptions proxy_options(const std::string& yaml) {
  return {.config_yaml = yaml, .users = users_file_text({{"postgres", kPassword}})};
}

void create_db_both(const std::string& db, const std::string& ddl) {
  if (!servers().target.running()) servers().target.start();
  for (PgCluster* c : {&servers().source, &servers().target}) {
    c->exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    c->exec("CREATE DATABASE " + db);
    if (!ddl.empty()) c->exec(ddl, db);
  }
}

bool replay_waits_on_lock(const std::string& db) {
  return servers()
             .target
             .exec(
                 "SELECT count(*) FROM pg_stat_activity WHERE "
                 "application_name = 'pgshift-mirror' AND wait_event_type = 'Lock'",
                 db)
             .scalar() == "1";
}

CommandResult init_pgbench(const std::string& db) {
  const PgCluster& source = servers().source;
  return run_command(ProcessOptions{.argv = {pg_tool("pgbench").string(), "-i", "-q", "-s", "1",
                                             "-h", source.host(), "-p",
                                             std::to_string(source.port()), "-U", "postgres", db},
                                    .env = {{"PGPASSWORD", kPassword}}},
                     120s);
}

void expect_verify_equal(const PgshiftProcess& proxy, const std::string& route,
                         std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"verify", route});
  const auto verify = run_pgshift(proxy, std::move(extra));
  EXPECT_EQ(verify.exit_code, 0) << verify.describe();
  EXPECT_NE(verify.out.find("EQUAL"), std::string::npos) << verify.out;
}

CommandResult pgbench(const PgshiftProcess& proxy, const std::string& db,
                      std::vector<std::string> extra) {
  std::vector<std::string> argv{pg_tool("pgbench").string(),  "-n", "-h",      proxy.host(), "-p",
                                std::to_string(proxy.port()), "-U", "postgres"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(db);
  return run_command(ProcessOptions{.argv = argv, .env = {{"PGPASSWORD", kPassword}}}, 300s);
}

}  // namespace pgshift::test
