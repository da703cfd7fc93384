#pragma once
// How many I/O threads `threads: 0` means: the container's CPU quota, not the node's cores.
// A sidecar usually gets a fraction of a CPU while std::thread::hardware_concurrency() (and
// nproc inside a container without a cpuset) shows every core of the node.
#include <optional>
#include <string>
#include <string_view>

namespace pgshift::proxy {

struct ThreadCount {
  int threads = 1;
  std::string reason;  // for the startup log: "cgroup cpu.max 150000/100000 (1.50 CPUs)", ...
};

// The CPUs a cgroup v2 cpu.max line allows ("max 100000" -> nullopt, "150000 100000" -> 1.5).
// nullopt for "max" or anything malformed.
std::optional<double> cpus_from_cpu_max(std::string_view cpu_max);

// The default thread count: the quota rounded to the nearest whole CPU (at least 1), capped
// by `cores`; `cores` when there is no quota. `cpu_max` is the content of cpu.max, if any.
ThreadCount default_threads(std::optional<std::string_view> cpu_max, unsigned cores);

// default_threads() for this process: /sys/fs/cgroup/cpu.max (cgroup v2), else cgroup v1's
// cpu.cfs_quota_us / cpu.cfs_period_us, and the CPUs this process may run on.
ThreadCount detect_default_threads();

}  // namespace pgshift::proxy
