#pragma once
// `pgshift sync start|status|stop ROUTE` for a route with sync.mode mirror (docs/sync.md,
// "Mirror mode"): the mirror starts and stops through the fleet barrier, which runs in the
// sidecar, so these commands drive the sidecar named by the config's admin section (its
// loopback address and token file) and print its steps as they end. --copy-schema copies
// the schema from the command line first (pg_dump/psql, as in logical mode) and finishes it
// (indexes, constraints) after the initial copy.
#include "proxy/migrate/cli.hpp"

namespace pgshift::proxy {

int sync_mirror_command(const config::Config& config, const migrate::SyncSides& sides,
                        const std::string& sub, bool copy_schema, bool json);

}  // namespace pgshift::proxy
