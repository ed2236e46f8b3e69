#include "ipex/affinity/topology.h"

#include <gtest/gtest.h>

#include <sched.h>
#include <unistd.h>

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

namespace {

std::string write_temp(const std::string& text) {
    char path[] = "/tmp/ipex-topology-test-XXXXXX";
    const int fd = mkstemp(path);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    return path;
}

// This machine's XML, exported by the same load that reads it.
std::string machine_export() {
    const std::string xml = load_topology("", true).machine_xml;
    EXPECT_FALSE(xml.empty());
    return xml;
}

void expect_same_machine(const Topology& a, const Topology& b) {
    ASSERT_EQ(a.pus.size(), b.pus.size());
    for (std::size_t i = 0; i < a.pus.size(); ++i) {
        SCOPED_TRACE("PU " + std::to_string(a.pus[i].os));
        EXPECT_EQ(a.pus[i].os, b.pus[i].os);
        EXPECT_EQ(a.pus[i].core, b.pus[i].core);
        EXPECT_EQ(a.pus[i].package, b.pus[i].package);
        EXPECT_EQ(a.pus[i].numa, b.pus[i].numa);
        EXPECT_EQ(a.pus[i].smt_rank, b.pus[i].smt_rank);
        EXPECT_EQ(a.pus[i].kind_rank, b.pus[i].kind_rank);
        EXPECT_EQ(a.pus[i].allowed, b.pus[i].allowed);
    }
    ASSERT_EQ(a.nodes.size(), b.nodes.size());
    for (std::size_t i = 0; i < a.nodes.size(); ++i) {
        EXPECT_EQ(a.nodes[i].os, b.nodes[i].os);
        EXPECT_EQ(a.nodes[i].cpus, b.nodes[i].cpus);
        EXPECT_EQ(a.nodes[i].memory, b.nodes[i].memory);
        EXPECT_EQ(a.nodes[i].allowed, b.nodes[i].allowed);
    }
    EXPECT_EQ(a.offline, b.offline);
}

}  // namespace

TEST(Topology, ThisMachinesOwnExportReadsLikeTheMachine) {
    const std::string path = write_temp(machine_export());
    const Topology cached = load_this_machine(path);
    EXPECT_EQ(cached.source, "this machine");
    expect_same_machine(load_topology(""), cached);
    unlink(path.c_str());
}

TEST(Topology, ThisMachinesExportStillReadsTheProcessAffinityLive) {
    // Written while the whole machine was ours, read after narrowing to one CPU: that CPU
    // alone is allowed, as a fresh load says (a rank bound by its launcher).
    const std::string path = write_temp(machine_export());
    cpu_set_t before;
    ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
    int first = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && first < 0; ++cpu)
        if (CPU_ISSET(cpu, &before)) first = cpu;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    const Topology cached = load_this_machine(path);
    const Topology live = load_topology("");
    sched_setaffinity(0, sizeof before, &before);
    EXPECT_EQ(cached.allowed_cpus(), std::vector<int>{first});
    expect_same_machine(live, cached);
    unlink(path.c_str());
}

TEST(Topology, OnlyThisMachineIsExportedForTheRanks) {
    const Topology other = load_topology(ipex::testing::test_topology("xeon-2s28c2t.xml"), true);
    EXPECT_EQ(other.pus.size(), 112u);
    EXPECT_EQ(other.machine_xml, "");
    EXPECT_EQ(load_topology("").machine_xml, "");  // not asked for
}

TEST(Topology, ABrokenExportIsAClearError) {
    const std::string path = write_temp("<topology>");
    EXPECT_THROW(load_this_machine(path), TopologyError);
    unlink(path.c_str());
    EXPECT_THROW(load_this_machine("/nonexistent/cache.xml"), TopologyError);
}

TEST(Topology, CpusOfNodesOutsideTheContainerKeepTheirNode) {
    const Topology t = load_topology(shared_topology("16amd64-8n2c-cpusets.xml"));
    EXPECT_EQ(t.find_node(0), nullptr);
    EXPECT_EQ(t.find_pu(0)->numa, 0);
    EXPECT_EQ(t.find_pu(12)->numa, 6);
    EXPECT_EQ(t.find_pu(15)->numa, 7);
    EXPECT_EQ(t.find_pu(2)->numa, 1);
}
