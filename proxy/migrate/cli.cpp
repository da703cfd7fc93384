#include "proxy/migrate/cli.hpp"

#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/load.hpp"
#include "proxy/migrate/sync.hpp"
#include "proxy/migrate/verify.hpp"
#include "proxy/migrate/verify_record.hpp"

namespace pgshift::migrate {

namespace {

constexpr const char* kUsage =
    "usage: pgshift sync check  ROUTE --config FILE\n"
    "       pgshift sync start  ROUTE --config FILE [--copy-schema]\n"
    "       pgshift sync status ROUTE --config FILE [--json]\n"
    "       pgshift sync stop   ROUTE --config FILE\n"
    "       pgshift verify      ROUTE --config FILE [--tables a,b] [--json]\n";

struct Args {
  std::string route, config;
  std::set<std::string> flags;                // --copy-schema, --json
  std::map<std::string, std::string> values;  // --tables
};

// Parses "ROUTE --config FILE [flags]"; nullopt (after printing why) on a mistake.
std::optional<Args> parse(int argc, char** argv, int first, const std::set<std::string>& flags,
                          const std::set<std::string>& valued) {
  Args a;
  for (int i = first; i < argc; ++i) {
    std::string s = argv[i];
    if (s == "--config" || s == "-c" || valued.count(s)) {
      if (i + 1 >= argc) {
        std::cerr << s << " needs a value\n" << kUsage;
        return std::nullopt;
      }
      (s == "--config" || s == "-c" ? a.config : a.values[s]) = argv[++i];
    } else if (flags.count(s)) {
      a.flags.insert(s);
    } else if (s.rfind("-", 0) != 0 && a.route.empty()) {
      a.route = s;
    } else {
      std::cerr << "unknown argument " << s << "\n" << kUsage;
      return std::nullopt;
    }
  }
  if (a.route.empty() || a.config.empty()) {
    std::cerr << "ROUTE and --config FILE are required\n" << kUsage;
    return std::nullopt;
  }
  return a;
}

std::optional<SyncSides> load_sides(const Args& a, config::ConfigPtr& holder) {
  auto loaded = config::load_file(a.config);
  if (!loaded.ok()) {
    for (const auto& e : loaded.errors) std::cerr << a.config << ": " << e.to_string() << "\n";
    return std::nullopt;
  }
  holder = loaded.config;
  try {
    return sync_sides(*holder, a.route);
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return std::nullopt;
  }
}

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace

int sync_main(int argc, char** argv, const MirrorCommand& mirror) {
  const std::string sub = argc > 1 ? argv[1] : "";
  if (sub != "check" && sub != "start" && sub != "status" && sub != "stop") {
    std::cerr << kUsage;
    return sub == "--help" || sub == "-h" ? 0 : 2;
  }
  auto args = parse(argc, argv, 2, {"--copy-schema", "--json"}, {});
  if (!args) return 2;
  config::ConfigPtr cfg;
  auto sides = load_sides(*args, cfg);
  if (!sides) return 2;
  try {
    if (sub == "check") return sync_check(*sides, std::cout);
    const bool mirrored = sides->route->sync.mode == config::SyncMode::mirror;
    if (mirrored && !mirror) {
      std::cerr << "route " << args->route << " uses sync.mode mirror, which this build cannot "
                << "drive from the command line\n";
      return 2;
    }
    if (sub == "start") {
      const bool copy_schema = args->flags.count("--copy-schema") > 0;
      const int rc = mirrored ? mirror(*cfg, *sides, sub, copy_schema, false)
                              : sync_start(*sides, copy_schema, std::cout);
      // A verify run older than this start no longer counts for cutover (verify_record.hpp).
      if (rc != 0) return rc;
      try {
        std::cout << "sync start recorded in " << record_sync_start(*cfg, args->route) << "\n";
      } catch (const std::exception& e) {
        std::cerr << "pgshift sync start: the sync runs, but its start was NOT recorded (a "
                     "verify run from before it would still count for cutover): "
                  << e.what() << "\n";
        return 1;
      }
      return rc;
    }
    if (mirrored) return mirror(*cfg, *sides, sub, false, args->flags.count("--json") > 0);
    if (sub == "status") return sync_status(*sides, args->flags.count("--json") > 0, std::cout);
    return sync_stop(*sides, std::cout);
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pgshift sync " << sub << ": " << e.what() << "\n";
    return 1;
  }
}

int verify_main(int argc, char** argv) {
  auto args = parse(argc, argv, 1, {"--json"}, {"--tables", "--chunk-rows", "--max-diffs"});
  if (!args) return 2;
  config::ConfigPtr cfg;
  auto sides = load_sides(*args, cfg);
  if (!sides) return 2;
  VerifyOptions opt;
  opt.json = args->flags.count("--json") > 0;
  if (auto it = args->values.find("--tables"); it != args->values.end()) {
    opt.tables = split_list(it->second);
  }
  try {
    if (auto it = args->values.find("--chunk-rows"); it != args->values.end()) {
      opt.chunk_rows = std::stol(it->second);
    }
    if (auto it = args->values.find("--max-diffs"); it != args->values.end()) {
      opt.max_diffs = std::stol(it->second);
    }
    VerifyRun run;
    const int rc = verify(*sides, opt, std::cout, &run);
    // Recorded for the cutover/rollback preconditions (verify_record.hpp). A run that could
    // not reach a database threw above and records nothing.
    std::ostream& note = opt.json ? std::cerr : std::cout;
    if (!opt.tables.empty()) {
      // Part of the route is no evidence for switching all of it.
      note << "verify result not recorded: --tables compares part of the route\n";
      return rc;
    }
    try {
      note << "verify result recorded in " << record_verify_run(*cfg, run) << "\n";
    } catch (const std::exception& e) {
      std::cerr << "pgshift verify: the result was NOT recorded (cutover and rollback will not "
                   "see it): "
                << e.what() << "\n";
      return rc == 0 ? 1 : rc;
    }
    return rc;
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "pgshift verify: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace pgshift::migrate
