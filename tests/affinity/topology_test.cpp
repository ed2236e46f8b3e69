#include "ipex/affinity/topology.h"

#include <gtest/gtest.h>

#include <set>

#include "ipex/affinity/cpu_list.h"
#include "test_topologies.h"

using namespace ipex::affinity;
using ipex::testing::shared_topology;
using ipex::testing::test_topology;

TEST(Topology, EveryTopologyFileLoads) {
    const auto files = ipex::testing::all_topologies();
    ASSERT_GE(files.size(), 20u);
    for (const auto& file : files) {
        SCOPED_TRACE(file);
        const Topology t = load_topology(file);
        EXPECT_FALSE(t.pus.empty());
        std::set<int> ids;
        for (const auto& p : t.pus) EXPECT_TRUE(ids.insert(p.os).second) << "duplicate PU " << p.os;
    }
}

TEST(Topology, LinuxStyleSiblingsAreSecondThreads) {
    const Topology t = load_topology(shared_topology("xeon8480-2s56c2t.xml"));
    ASSERT_EQ(t.pus.size(), 224u);
    const Pu* first = t.find_pu(5);
    const Pu* sibling = t.find_pu(5 + 112);
    ASSERT_TRUE(first && sibling);
    EXPECT_EQ(first->core, sibling->core);
    EXPECT_EQ(first->smt_rank, 0);
    EXPECT_EQ(sibling->smt_rank, 1);
    EXPECT_EQ(t.find_pu(60)->numa, 1);
    EXPECT_EQ(t.find_pu(60)->package, 1);
}

TEST(Topology, CgroupRestrictionsAreModelled) {
    const Topology t = load_topology(shared_topology("16amd64-8n2c-cpusets.xml"));
    // allowed_cpuset 0xf06f: CPUs 0-3,5-6,12-15.
    EXPECT_EQ(format_id_list(t.allowed_cpus()), "0-3,5-6,12-15");
    for (const auto& n : t.nodes) {
        const bool in_cgroup = n.os >= 1 && n.os <= 4;
        EXPECT_EQ(n.allowed, in_cgroup) << n.os;
    }
    EXPECT_TRUE(t.find_node(1)->allowed);
}

TEST(Topology, OfflineCpusAreKnownButNotPus) {
    const Topology t = load_topology(shared_topology("16em64t-4s2c2t-offlines.xml"));
    EXPECT_FALSE(t.offline.empty());
    for (int cpu : t.offline) EXPECT_EQ(t.find_pu(cpu), nullptr);
}

TEST(Topology, NodeIdsAboveNineKeepAllDigits) {
    const Topology t = load_topology(shared_topology("fakecpuid1f-64intel64-2p4d2n2c2t.xml"));
    ASSERT_NE(t.find_node(15), nullptr);
    EXPECT_EQ(t.find_node(15)->cpus.size(), 4u);
    EXPECT_EQ(t.find_pu(t.find_node(12)->cpus.front())->numa, 12);
}

TEST(Topology, HybridKindsRankEfficiencyCoresBelow) {
    const Topology t = load_topology(test_topology("hybrid-8p8e.xml"));
    for (const auto& p : t.pus) EXPECT_EQ(p.efficiency_core(), p.os >= 8) << p.os;
}

TEST(Topology, MemoryOnlyNodesHaveNoCpus) {
    const Topology t = load_topology(test_topology("hbm-2s4c2t.xml"));
    ASSERT_EQ(t.nodes.size(), 4u);
    EXPECT_FALSE(t.find_node(0)->cpus.empty());
    EXPECT_TRUE(t.find_node(1)->cpus.empty());
    EXPECT_TRUE(t.find_node(3)->cpus.empty());
    EXPECT_GT(t.find_node(1)->memory, 0u);
}

TEST(Topology, MissingFileIsAClearError) {
    try {
        load_topology("/nonexistent/topology.xml");
        FAIL() << "no error";
    } catch (const TopologyError& e) {
        EXPECT_NE(std::string(e.what()).find("/nonexistent/topology.xml"), std::string::npos);
    }
}

TEST(Topology, ThisMachineLoads) {
    const Topology t = load_topology("");
    EXPECT_FALSE(t.allowed_cpus().empty());
}
