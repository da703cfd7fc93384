// pgshift entry point: `pgshift --config FILE`, `pgshift check-config FILE`, `pgshift ctl ...`,
// `pgshift sync ...`, `pgshift verify ...` (proxy/migrate/cli.hpp).
#include <cstring>
#include <iostream>
#include <string>

#include "config/load.hpp"
#include "proxy/ctl/ctl.hpp"
#include "proxy/migrate/cli.hpp"
#include "proxy/telemetry/log.hpp"
#include "proxy/runtime/runtime.hpp"
#include "proxy/app/server.hpp"
#include "proxy/app/sync_mirror.hpp"

namespace {

constexpr const char* kUsage =
    "usage: pgshift --config FILE          run the proxy\n"
    "       pgshift check-config FILE      validate a configuration file and exit\n"
    "       pgshift ctl COMMAND ...        drive a running pgshift (pgshift ctl --help)\n"
    "       pgshift sync check|start|status|stop ROUTE --config FILE   logical sync or mirror\n"
    "       pgshift verify ROUTE --config FILE [--tables a,b] [--json]  compare source and target\n"
    "       pgshift --version\n";

int check_config(const std::string& path) {
  auto loaded = pgshift::config::load_file(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << path << ": " << e.to_string() << "\n";
    std::cerr << loaded.errors.size() << " error(s) in " << path << "\n";
    return 1;
  }
  std::vector<std::string> errors;
  auto snap = pgshift::proxy::build_snapshot(loaded.config, errors);
  if (!snap) {
    for (const auto& e : errors) std::cerr << path << ": " << e << "\n";
    std::cerr << errors.size() << " error(s) in " << path << "\n";
    return 1;
  }
  for (const auto& w : pgshift::proxy::unsupported_setting_warnings(*loaded.config)) {
    std::cout << path << ": warning: " << w << "\n";
  }
  std::cout << path << ": OK (" << loaded.config->routes.size() << " route(s))\n";
  return 0;
}

int run(const std::string& path) {
  using namespace pgshift;
  auto loaded = config::load_file(path);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) {
      proxy::log_error("config error", {proxy::f("file", path), proxy::f("error", e.to_string())});
    }
    return 2;
  }
  proxy::LogLevel level;
  if (proxy::parse_log_level(loaded.config->log_level, level)) proxy::set_log_level(level);
  std::vector<std::string> errors;
  auto snap = proxy::build_snapshot(loaded.config, errors);
  if (!snap) {
    for (const auto& e : errors) proxy::log_error("startup error", {proxy::f("error", e)});
    return 2;
  }
  for (const auto& w : proxy::unsupported_setting_warnings(*loaded.config)) {
    proxy::log_warn("setting not implemented yet", {proxy::f("warning", w)});
  }
  auto runtime = std::make_shared<proxy::Runtime>(std::move(snap));
  try {
    proxy::Server server(runtime, path);
    return server.run();
  } catch (const std::exception& e) {
    proxy::log_error("fatal", {proxy::f("error", e.what())});
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "--version") {
    std::cout << "pgshift 0.1.0\n";
    return 0;
  }
  if (cmd == "ctl") return pgshift::proxy::ctl_main(argc - 1, argv + 1);
  if (cmd == "sync") {
    return pgshift::migrate::sync_main(argc - 1, argv + 1, pgshift::proxy::sync_mirror_command);
  }
  if (cmd == "verify") return pgshift::migrate::verify_main(argc - 1, argv + 1);
  if (cmd == "check-config" && argc == 3) return check_config(argv[2]);
  if ((cmd == "--config" || cmd == "-c") && argc == 3) return run(argv[2]);
  std::cerr << kUsage;
  return cmd == "--help" || cmd == "-h" ? 0 : 2;
}
