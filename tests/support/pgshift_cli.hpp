#pragma once
// The pgshift command line against a running PgshiftProcess, as an operator would use it:
// `pgshift <command> --config <its config>` (sync, verify) and `pgshift ctl` through its admin
// API; and the mirror's status as GET /v1/routes/{name} reports it.
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pgshift_process.hpp"
#include "process.hpp"

namespace pgshift::test {

// `pgshift ARGS... --config <proxy's config file>`.
CommandResult run_pgshift(const PgshiftProcess& proxy, std::vector<std::string> args,
                          std::chrono::seconds timeout = std::chrono::seconds(120));

// `pgshift ctl --url <proxy's admin API> --token-file <its token> ARGS...`.
CommandResult run_ctl(const PgshiftProcess& proxy, std::vector<std::string> args,
                      std::chrono::seconds timeout = std::chrono::seconds(120));

// The route's sync.mirror object of GET /v1/routes/{route} (empty when it has none).
boost::json::object mirror_status(const PgshiftProcess& proxy, const std::string& route);

// o[key] as an integer; -1 when it is missing or not a number.
std::int64_t json_number(const boost::json::object& o, const char* key);

// The route's mirror streams with nothing queued.
bool mirror_drained(const PgshiftProcess& proxy, const std::string& route);

}  // namespace pgshift::test
