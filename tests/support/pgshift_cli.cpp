#include "pgshift_cli.hpp"

#include <boost/json/parse.hpp>

#include "metrics.hpp"
#include "paths.hpp"

namespace pgshift::test {

CommandResult run_pgshift(const PgshiftProcess& proxy, std::vector<std::string> args,
                          std::chrono::seconds timeout) {
  std::vector<std::string> argv{pgshift_binary().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--config");
  argv.push_back(proxy.config_file().string());
  return run_command(argv, timeout);
}

CommandResult run_ctl(const PgshiftProcess& proxy, std::vector<std::string> args,
                      std::chrono::seconds timeout) {
  std::vector<std::string> argv = {pgshift_binary().string(),
                                   "ctl",
                                   "--url",
                                   "http://127.0.0.1:" + std::to_string(proxy.admin_port()),
                                   "--token-file",
                                   proxy.admin_token_file().string()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, timeout);
}

boost::json::object mirror_status(const PgshiftProcess& proxy, const std::string& route) {
  auto v = boost::json::parse(fetch_admin(proxy, "/v1/routes/" + route));
  const auto& m = v.as_object().at("sync").as_object().at("mirror");
  return m.is_object() ? m.as_object() : boost::json::object{};
}

std::int64_t json_number(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_number() ? v->to_number<std::int64_t>() : -1;
}

bool mirror_drained(const PgshiftProcess& proxy, const std::string& route) {
  auto m = mirror_status(proxy, route);
  return json_number(m, "queued") == 0 && m.contains("state") && m.at("state") == "streaming";
}

}  // namespace pgshift::test
