#pragma once
// Shared by the mirror binaries (mirror_flow_test, mirror_outage_test, mirror_session_test): a
// source and a target PostgreSQL 15 cluster started once per binary, one database per test on
// both, and a pgshift whose route mirrors it (sync.mode mirror). Clients log in as
// postgres/kPassword.
#include <string>
#include <vector>

#include "tests/support/support.hpp"

namespace pgshift::test {

inline constexpr const char* kPassword = "postgres-test-password";

struct MirrorServers {
  PgCluster source{{.name = "source", .settings = {{"max_connections", "100"}}}};
  PgCluster target{{.name = "target", .settings = {{"max_connections", "100"}}}};
};
MirrorServers& servers();

// pgshift's YAML: route `db` (client database, source and target database of that name) with
// sync.mode mirror; `mirror_yaml` continues its sync: block.
std::string config_yaml(const std::string& db, const std::string& mirror_yaml = "",
                        const std::string& pool_mode = "transaction",
                        const std::string& control = "file");
PgshiftOptions proxy_options(const std::string& yaml);

// Database `db` afresh on both clusters (the target started again if a test stopped it),
// then `ddl` run in it on both.
void create_db_both(const std::string& db, const std::string& ddl = "");
// The target's pgshift-mirror connection to `db` waits on a lock.
bool replay_waits_on_lock(const std::string& db);
// pgbench -i -s 1 of `db` on the source, directly (not through pgshift).
CommandResult init_pgbench(const std::string& db);
// `pgshift verify ROUTE ARGS...` through `proxy` says EQUAL and exits 0 (test failures
// otherwise).
void expect_verify_equal(const PgshiftProcess& proxy, const std::string& route,
                         std::vector<std::string> extra = {});
// pgbench ARGS... db through `proxy`.
CommandResult pgbench(const PgshiftProcess& proxy, const std::string& db,
                      std::vector<std::string> extra);

}  // namespace pgshift::test
