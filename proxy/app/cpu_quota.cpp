#include "proxy/app/cpu_quota.hpp"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgshift::proxy {

namespace {

std::optional<long long> parse_number(std::string_view s) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<std::string> read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return std::nullopt;
  return line;
}

// cgroup v1: "cfs_quota_us cfs_period_us" in the same form as cpu.max ("-1" = no quota).
std::optional<std::string> cgroup_v1_as_cpu_max() {
  auto quota = read_first_line("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  auto period = read_first_line("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  if (!quota || !period) return std::nullopt;
  if (*quota == "-1") return "max " + *period;
  return *quota + " " + *period;
}

unsigned usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

std::optional<double> cpus_from_cpu_max(std::string_view cpu_max) {
  while (!cpu_max.empty() && (cpu_max.back() == '\n' || cpu_max.back() == ' ')) {
    cpu_max.remove_suffix(1);
  }
  auto space = cpu_max.find(' ');
  if (space == std::string_view::npos) return std::nullopt;
  auto quota = parse_number(cpu_max.substr(0, space));
  auto period = parse_number(cpu_max.substr(space + 1));
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

ThreadCount default_threads(std::optional<std::string_view> cpu_max, unsigned cores) {
  cores = std::max(1u, cores);
  std::optional<double> cpus = cpu_max ? cpus_from_cpu_max(*cpu_max) : std::nullopt;
  if (!cpus)
    return {static_cast<int>(cores), std::to_string(cores) + " usable cores, no CPU quota"};
  long rounded = std::max(1L, std::lround(*cpus));
  int threads = static_cast<int>(std::min<long>(rounded, cores));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", *cpus);
  return {threads, "cgroup CPU quota of " + std::string(buf) + " CPUs (" + std::to_string(cores) +
                       " usable cores)"};
}

ThreadCount detect_default_threads() {
  auto v2 = read_first_line("/sys/fs/cgroup/cpu.max");
  std::optional<std::string> cpu_max = v2 ? v2 : cgroup_v1_as_cpu_max();
  return default_threads(cpu_max ? std::optional<std::string_view>(*cpu_max) : std::nullopt,
                         usable_cores());
}

}  // namespace pgshift::proxy
