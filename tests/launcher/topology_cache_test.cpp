#include "topology_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

using namespace ipex;
using namespace ipex::launcher;
using Env = allocator::Environment;

namespace {

bool exists(const std::string& path) {
    return access(path.c_str(), F_OK) == 0;
}

// Another machine's export: a rank that reads it shows 112 PUs, not this machine's.
const std::string kOtherMachine = std::string(IPEX_TEST_TOPOLOGIES) + "/xeon-2s28c2t.xml";

std::string machine_export() {
    return affinity::load_topology("", true).machine_xml;
}

}  // namespace

TEST(TopologyCache, WritesThisMachineForTheRanksAndRemovesItAfterwards) {
    std::string path;
    {
        const TopologyCache cache(Env{{"TMPDIR", "/tmp"}}, machine_export());
        const Env vars = cache.variables();
        ASSERT_EQ(vars.size(), 2u);
        path = vars.at(kTopologyCacheVariable);
        EXPECT_EQ(path.rfind("/tmp/ipexrun-topology-", 0), 0u) << path;
        EXPECT_EQ(vars.at(kTopologyNodeVariable), node_identity());
        EXPECT_TRUE(exists(path));
        const auto cached = load_rank_topology(vars);
        EXPECT_EQ(cached.pus.size(), affinity::load_topology("").pus.size());
    }
    EXPECT_FALSE(exists(path));
}

TEST(TopologyCache, NothingIsCachedWhenHwlocIsRedirected) {
    const TopologyCache cache(Env{{"HWLOC_XMLFILE", kOtherMachine}}, machine_export());
    EXPECT_TRUE(cache.variables().empty());
}

TEST(TopologyCache, NothingIsCachedWithoutAnExport) {
    const TopologyCache cache(Env{{"TMPDIR", "/tmp"}}, "");
    EXPECT_TRUE(cache.variables().empty());
}

TEST(TopologyCache, ARankReadsTheFileOnlyOnTheNodeThatWroteIt) {
    ASSERT_FALSE(node_identity().empty());
    const std::size_t here = affinity::load_topology("").pus.size();
    ASSERT_NE(here, 112u);
    Env env = {{kTopologyCacheVariable, kOtherMachine}, {kTopologyNodeVariable, node_identity()}};
    EXPECT_EQ(load_rank_topology(env).pus.size(), 112u);  // the file is what it reads
    env[kTopologyNodeVariable] = "another-boot/another-host";
    EXPECT_EQ(load_rank_topology(env).pus.size(), here);
    env[kTopologyNodeVariable] = "";
    EXPECT_EQ(load_rank_topology(env).pus.size(), here);
    env[kTopologyNodeVariable] = node_identity();
    env["HWLOC_COMPONENTS"] = "linux";
    EXPECT_EQ(load_rank_topology(env).pus.size(), here);
    env.erase("HWLOC_COMPONENTS");
    env[kTopologyCacheVariable] = "/nonexistent/ipexrun-topology";  // gone: the system answers
    EXPECT_EQ(load_rank_topology(env).pus.size(), here);
}
