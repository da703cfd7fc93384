#include "psql.hpp"

#include <stdexcept>

#include "paths.hpp"

namespace pgshift::test {

const std::vector<std::string>& libpq_environment_variables() {
  static const std::vector<std::string> names = {"PGHOST",
                                                 "PGHOSTADDR",
                                                 "PGPORT",
                                                 "PGDATABASE",
                                                 "PGUSER",
                                                 "PGPASSWORD",
                                                 "PGPASSFILE",
                                                 "PGSERVICE",
                                                 "PGSERVICEFILE",
                                                 "PGOPTIONS",
                                                 "PGSSLMODE",
                                                 "PGSSLROOTCERT",
                                                 "PGSSLCERT",
                                                 "PGSSLKEY",
                                                 "PGSSLCRL",
                                                 "PGREQUIRESSL",
                                                 "PGCONNECT_TIMEOUT",
                                                 "PGAPPNAME",
                                                 "PGCLIENTENCODING",
                                                 "PGTARGETSESSIONATTRS",
                                                 "PGGSSENCMODE",
                                                 "PGCHANNELBINDING",
                                                 "PGSYSCONFDIR",
                                                 "PGTZ",
                                                 "PGDATESTYLE"};
  return names;
}

CommandResult try_psql(const std::string& conninfo, const std::string& sql,
                       std::chrono::milliseconds timeout,
                       const std::vector<std::string>& extra_args) {
  ProcessOptions options;
  options.argv = {pg_tool("psql").string(), "-X", "-A",    "-t", "-q", "-v",
                  "ON_ERROR_STOP=1",        "-d", conninfo};
  if (!sql.empty()) {
    options.argv.push_back("-c");
    options.argv.push_back(sql);
  }
  options.argv.insert(options.argv.end(), extra_args.begin(), extra_args.end());
  options.unset_env = libpq_environment_variables();
  return run_command(std::move(options), timeout);
}

std::string run_psql(const std::string& conninfo, const std::string& sql,
                     std::chrono::milliseconds timeout) {
  CommandResult result = try_psql(conninfo, sql, timeout);
  if (!result.success()) {
    const std::string shown = sql.size() <= 500 ? sql : sql.substr(0, 500) + "...";
    throw std::runtime_error("psql failed: " + shown + "\n" + result.describe());
  }
  std::string out = std::move(result.out);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace pgshift::test
