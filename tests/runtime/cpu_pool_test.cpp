#include "ipex/runtime/cpu_pool.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace ipex::runtime {
namespace {

TEST(CPUPool, AllIsTheAllowedSet) {
    ASSERT_FALSE(allowed_cpus().empty());
    EXPECT_EQ(CPUPool::all().cpus(), allowed_cpus());
}

TEST(CPUPool, KeepsTheGivenOrderAndDropsForbiddenCpus) {
    const auto& allowed = allowed_cpus();
    std::vector<int> asked(allowed.rbegin(), allowed.rend());
    asked.insert(asked.begin() + 1, 100000);  // no such CPU
    CPUPool pool(asked);
    EXPECT_EQ(pool.cpus(), std::vector<int>(allowed.rbegin(), allowed.rend()));
}

TEST(CPUPool, NothingLeftNamesTheAllowedCpus) {
    try {
        CPUPool({100000, 100001});
        FAIL() << "expected an error";
    } catch (const std::invalid_argument& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("100000,100001"), std::string::npos) << msg;
        EXPECT_NE(msg.find("allowed CPUs: " + format_cpu_list(allowed_cpus())), std::string::npos)
            << msg;
    }
    EXPECT_THROW(CPUPool(std::vector<int>{}), std::invalid_argument);
}

TEST(CPUPool, RejectsNegativeAndRepeatedIds) {
    EXPECT_THROW(CPUPool({-1}), std::invalid_argument);
    EXPECT_THROW(CPUPool({allowed_cpus()[0], allowed_cpus()[0]}), std::invalid_argument);
}

TEST(CPUPool, NumaNodeZeroIsWithinTheAllowedSet) {
    CPUPool node = CPUPool::numa_node(0);
    for (int c : node.cpus())
        EXPECT_TRUE(std::binary_search(allowed_cpus().begin(), allowed_cpus().end(), c));
    EXPECT_THROW(CPUPool::numa_node(4096), std::invalid_argument);
}

TEST(CPUPool, SplitGivesConsecutiveSlicesFirstOnesLarger) {
    CPUPool pool = CPUPool::all();
    auto one = pool.split(1);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0], pool);
    if (pool.size() >= 2) {
        auto parts = pool.split(2);
        ASSERT_EQ(parts.size(), 2u);
        EXPECT_EQ(parts[0].size(), (pool.size() + 1) / 2);
        std::vector<int> joined = parts[0].cpus();
        joined.insert(joined.end(), parts[1].cpus().begin(), parts[1].cpus().end());
        EXPECT_EQ(joined, pool.cpus());
    }
    EXPECT_THROW(pool.split(0), std::invalid_argument);
    EXPECT_THROW(pool.split(static_cast<int>(pool.size()) + 1), std::invalid_argument);
}

TEST(CPUPool, FormatsRanges) {
    EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 8, 10, 11}), "0-3,8,10-11");
    EXPECT_EQ(format_cpu_list({5}), "5");
    EXPECT_EQ(format_cpu_list({}), "");
}

}  // namespace
}  // namespace ipex::runtime
