#pragma once
// The command lines of the migration engine, called from main():
//   pgshift sync check|start|status|stop ROUTE --config FILE [--copy-schema] [--json]
//   pgshift verify ROUTE --config FILE [--tables a,b] [--json]
// argv[0] is "sync" or "verify". Returns the exit code (2 for usage errors).
#include <functional>
#include <string>

#include "config/config.hpp"
#include "proxy/migrate/sync_common.hpp"

namespace pgshift::migrate {

// sync start|status|stop of a route with sync.mode mirror run in the sidecar (the fleet
// barrier lives there): the app passes this, which drives them through the admin API
// (proxy/app/sync_mirror.cpp). `sub` is "start", "status" or "stop".
using MirrorCommand = std::function<int(const config::Config& config, const SyncSides& sides,
                                        const std::string& sub, bool copy_schema, bool json)>;

int sync_main(int argc, char** argv, const MirrorCommand& mirror = {});
int verify_main(int argc, char** argv);

}  // namespace pgshift::migrate
