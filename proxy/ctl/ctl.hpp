#pragma once
// `pgshift ctl`: the operator's command line for the admin API (docs/admin-api.md).
//
//   pgshift ctl [--url http://127.0.0.1:9187] [--token-file FILE] [--json] [--timeout-ms N]
//               <command>
//   commands: routes | route NAME | set-read-percent NAME PERCENT |
//             pause [--timeout-ms N] | resume | health | pools
//
// The token comes from --token-file, else from $PGSHIFT_ADMIN_TOKEN; the URL from --url,
// else $PGSHIFT_ADMIN_URL. Output is a human table by default, the API's JSON with --json.
// Exit codes: 0 ok, 1 API or connection error (the message is printed), 2 usage error.
#include <iosfwd>

namespace pgshift::proxy {

// argv[0] is the subcommand name ("ctl") and is ignored. Writes results to `out` and
// messages to `err`.
int ctl_main(int argc, char** argv, std::ostream& out, std::ostream& err);
int ctl_main(int argc, char** argv);  // std::cout, std::cerr

}  // namespace pgshift::proxy
