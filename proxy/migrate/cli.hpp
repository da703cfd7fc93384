#pragma once
// The command lines of the migration engine, called from main():
//   pgshift sync check|start|status|stop ROUTE --config FILE [--copy-schema] [--json]
//   pgshift verify ROUTE --config FILE [--tables a,b] [--json]
// argv[0] is "sync" or "verify". Returns the exit code (2 for usage errors).
namespace pgshift::migrate {

int sync_main(int argc, char** argv);
int verify_main(int argc, char** argv);

}  // namespace pgshift::migrate
