#include "metrics.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <sstream>

#include "paths.hpp"
#include "process.hpp"

namespace pgshift::test {

std::string fetch_admin(const PgshiftProcess& proxy, const std::string& path, bool required) {
  using namespace std::chrono_literals;
  // urlopen raises for a non-2xx status, so the script exits non-zero then.
  const std::string script =
      "import sys, urllib.request\n"
      "req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + "
      "sys.argv[2]})\n"
      "print(urllib.request.urlopen(req, timeout=10).read().decode())\n";
  auto r = run_command(
      {system_python().string(), "-c", script,
       "http://127.0.0.1:" + std::to_string(proxy.admin_port()) + path, proxy.admin_token()},
      20s);
  if (required) {
    EXPECT_TRUE(r.success()) << r.describe();
  } else if (!r.success()) {
    return "GET " + path + " failed: " + r.describe();
  }
  return r.out;
}

std::string fetch_metrics(const PgshiftProcess& proxy) {
  return fetch_admin(proxy, "/metrics");
}

std::optional<double> metric_value(const std::string& text, const std::string& name,
                                   const std::map<std::string, std::string>& labels) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name, 0) != 0) continue;
    const std::string rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;  // a longer name
    const bool all = std::all_of(labels.begin(), labels.end(), [&](const auto& label) {
      return rest.find(label.first + "=\"" + label.second + "\"") != std::string::npos;
    });
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

std::string metric_lines(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    if (line.find(name) != std::string::npos) out += line + "\n";
  }
  return out.empty() ? "(no " + name + " series)" : out;
}

}  // namespace pgshift::test
