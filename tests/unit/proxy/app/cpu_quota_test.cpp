// threads: 0 follows the container's CPU quota (cgroup cpu.max), not the node's cores.
#include "proxy/app/cpu_quota.hpp"

#include <gtest/gtest.h>

namespace pgshift::proxy {
namespace {

TEST(CpuQuotaTest, ParsesCpuMax) {
  EXPECT_EQ(cpus_from_cpu_max("max 100000"), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max("max 100000\n"), std::nullopt);
  EXPECT_DOUBLE_EQ(*cpus_from_cpu_max("150000 100000\n"), 1.5);
  EXPECT_DOUBLE_EQ(*cpus_from_cpu_max("50000 100000"), 0.5);
  EXPECT_EQ(cpus_from_cpu_max(""), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max("abc 100000"), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max("100000 0"), std::nullopt);
  EXPECT_EQ(cpus_from_cpu_max("-1 100000"), std::nullopt);
}

TEST(CpuQuotaTest, QuotaRoundedAtLeastOneAndCappedByCores) {
  EXPECT_EQ(default_threads("50000 100000", 16).threads, 1);   // half a CPU
  EXPECT_EQ(default_threads("10000 100000", 16).threads, 1);   // a tenth: still one thread
  EXPECT_EQ(default_threads("150000 100000", 16).threads, 2);  // 1.5 rounds to 2
  EXPECT_EQ(default_threads("240000 100000", 16).threads, 2);  // 2.4 rounds to 2
  EXPECT_EQ(default_threads("800000 100000", 2).threads, 2);   // never more than the cores
  EXPECT_EQ(default_threads("max 100000", 6).threads, 6);      // no quota: every core
  EXPECT_EQ(default_threads(std::nullopt, 4).threads, 4);      // no cgroup file
  EXPECT_EQ(default_threads(std::nullopt, 0).threads, 1);
  EXPECT_NE(default_threads("150000 100000", 16).reason.find("1.50 CPUs"), std::string::npos);
}

TEST(CpuQuotaTest, DetectsSomethingSaneHere) {
  ThreadCount t = detect_default_threads();
  EXPECT_GE(t.threads, 1);
  EXPECT_FALSE(t.reason.empty());
}

}  // namespace
}  // namespace pgshift::proxy
