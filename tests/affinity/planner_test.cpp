#include "ipex/affinity/planner.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "ipex/affinity/cpu_list.h"
#include "test_topologies.h"

using namespace ipex::affinity;
using ipex::testing::shared_topology;
using ipex::testing::test_topology;

namespace {

// "0-17|18-35" style summary of a plan's CPU lists, and the same for memory nodes.
std::string cpus_of(const Plan& plan) {
    std::string out;
    for (const auto& inst : plan.instances)
        out += (out.empty() ? "" : "|") + format_id_list(inst.cpus);
    return out;
}
std::string nodes_of(const Plan& plan) {
    std::string out;
    for (const auto& inst : plan.instances)
        out += (out.empty() ? "" : "|") + format_id_list(inst.nodes);
    return out;
}

const Topology& two_by_28() {
    static const Topology t = load_topology(test_topology("xeon-2s28c2t.xml"));
    return t;
}

PlanRequest request(int n, std::vector<int> sizes = {}) {
    PlanRequest r;
    r.ninstances = n;
    r.ncores_per_instance = std::move(sizes);
    return r;
}

std::string error_of(const Topology& t, const PlanRequest& r) {
    try {
        plan_instances(t, r);
    } catch (const PlanError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

// The peer's documented examples, on its 2 × 28-core machine with SMT.
TEST(PlannerExamples, NoOptionsIsOneInstanceOfAllPhysicalCores) {
    const Plan p = plan_instances(two_by_28(), request(0));
    EXPECT_EQ(cpus_of(p), "0-55");
    EXPECT_EQ(nodes_of(p), "0-1");
}

TEST(PlannerExamples, EvenSplitMayCrossNodes) {
    const Plan p = plan_instances(two_by_28(), request(3));
    EXPECT_EQ(cpus_of(p), "0-17|18-35|36-53");
    EXPECT_EQ(nodes_of(p), "0|0-1|1");
}

TEST(PlannerExamples, GreedyHandsOutLeftoverCores) {
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), request(3, {-1}))), "0-18|19-37|38-55");
}

TEST(PlannerExamples, BindKeepsInstancesInsideNodes) {
    PlanRequest r = request(3);
    r.bind_numa_node = true;
    const Plan p = plan_instances(two_by_28(), r);
    EXPECT_EQ(cpus_of(p), "0-27|28-41|42-55");
    EXPECT_EQ(nodes_of(p), "0|1|1");
}

TEST(PlannerExamples, FixedSizeScatterCloseAndBind) {
    PlanRequest r = request(3, {8});
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-7|24-31|48-55");
    r.strategy = Strategy::kClose;
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-7|8-15|16-23");
    r.strategy = Strategy::kScatter;
    r.bind_numa_node = true;
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-7|8-15|28-35");
}

TEST(PlannerExamples, ScatterStartsExactlyTheInstancesAsked) {
    // The peer starts only 3 of these 4 instances.
    const Plan p = plan_instances(two_by_28(), request(4, {11}));
    ASSERT_EQ(p.instances.size(), 4u);
    EXPECT_EQ(cpus_of(p), "0-10|11-21|22-32|33-43");
}

TEST(PlannerExamples, OnlySizeGivenFillsTheMachine) {
    const Plan p = plan_instances(two_by_28(), request(0, {14}));
    EXPECT_EQ(cpus_of(p), "0-13|14-27|28-41|42-55");
}

TEST(PlannerExamples, LatencyModeIsFourCoresAndMayCrossNodes) {
    PlanRequest r;
    r.latency_mode = true;
    const Plan p = plan_instances(load_topology(test_topology("xeon-2s26c2t.xml")), r);
    ASSERT_EQ(p.instances.size(), 13u);
    EXPECT_EQ(format_id_list(p.instances[6].cpus), "24-27");
    EXPECT_EQ(format_id_list(p.instances[6].nodes), "0-1");
}

TEST(PlannerExamples, ThroughputModeIsOneInstancePerNode) {
    PlanRequest r;
    r.throughput_mode = true;
    const Plan p = plan_instances(two_by_28(), r);
    EXPECT_EQ(cpus_of(p), "0-27|28-55");
    EXPECT_EQ(nodes_of(p), "0|1");
}

TEST(Planner, PresetsTogetherAreAnError) {
    PlanRequest r;
    r.latency_mode = r.throughput_mode = true;
    EXPECT_NE(error_of(two_by_28(), r), "");
}

TEST(Planner, PresetOverridingExplicitSizesWarns) {
    PlanRequest r = request(3);
    r.throughput_mode = true;
    const Plan p = plan_instances(two_by_28(), r);
    EXPECT_EQ(p.instances.size(), 2u);
    ASSERT_EQ(p.warnings.size(), 1u);
}

TEST(Planner, LogicalCoresKeepWholeCoresTogether) {
    PlanRequest r = request(2);
    r.use_logical_cores = true;
    const Plan p = plan_instances(two_by_28(), r);
    EXPECT_EQ(cpus_of(p), "0-27,56-83|28-55,84-111");
}

TEST(Planner, UnequalSizes) {
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), request(0, {5, 5, 6}))), "0-4|5-9|10-15");
    EXPECT_NE(error_of(two_by_28(), request(2, {5, 5, 6})), "");
    PlanRequest r = request(0, {20, 20, 10});
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-19|20-39|40-49");
    r.bind_numa_node = true;  // 10 cores are left in no node
    EXPECT_NE(error_of(two_by_28(), r).find("NUMA node by node"), std::string::npos);
}

TEST(Planner, UnequalSizesBoundStayInsideNodes) {
    PlanRequest r = request(0, {20, 20, 8});
    r.bind_numa_node = true;
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-19|28-47|20-27");
}

TEST(Planner, InstanceIdxSelectsAndMinusOneMeansAll) {
    PlanRequest r = request(4);
    r.instance_idx = {2, 0};
    Plan p = plan_instances(two_by_28(), r);
    ASSERT_EQ(p.instances.size(), 2u);
    EXPECT_EQ(p.instances[0].index, 0);
    EXPECT_EQ(p.instances[1].index, 2);
    EXPECT_EQ(format_id_list(p.instances[1].cpus), "28-41");
    r.instance_idx = {-1};
    EXPECT_EQ(plan_instances(two_by_28(), r).instances.size(), 4u);
    r.instance_idx = {4};
    EXPECT_NE(error_of(two_by_28(), r).find("out of range"), std::string::npos);
}

TEST(Planner, CoresListIsHonouredAndPhysicalOnly) {
    PlanRequest r = request(2);
    r.cores_list = {56, 57, 0, 1, 2, 3};  // 56, 57 are siblings of 0, 1
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-1|2-3");
    r.use_logical_cores = true;  // 6 CPUs, 3 each, whole cores first
    EXPECT_EQ(cpus_of(plan_instances(two_by_28(), r)), "0-1,56|2-3,57");
}

TEST(Planner, NodesListWithNodeIdsAboveNine) {
    PlanRequest r;
    r.nodes_list = {10, 11};
    r.ninstances = 2;
    r.bind_numa_node = true;
    const Topology t = load_topology(shared_topology("fakecpuid1f-64intel64-2p4d2n2c2t.xml"));
    const Plan p = plan_instances(t, r);
    ASSERT_EQ(p.instances.size(), 2u);
    EXPECT_EQ(nodes_of(p), "10|11");
    for (const auto& inst : p.instances)
        for (int cpu : inst.cpus) EXPECT_EQ(t.find_pu(cpu)->numa, inst.nodes[0]);
}

TEST(Planner, InterleavedNumberingKeepsSocketsTogether) {
    const Topology t = load_topology(shared_topology("xeon-interleaved-2s4c2t.xml"));
    const Plan p = plan_instances(t, request(2));
    ASSERT_EQ(p.instances.size(), 2u);
    for (const auto& inst : p.instances) {
        std::set<int> packages;
        for (int cpu : inst.cpus) packages.insert(t.find_pu(cpu)->package);
        EXPECT_EQ(packages.size(), 1u) << format_id_list(inst.cpus);
    }
}

TEST(Planner, ImpossibleRequestsSayWhatIsAvailable) {
    EXPECT_NE(error_of(two_by_28(), request(57)).find("only 56 (CPUs 0-55) physical cores"),
              std::string::npos)
        << error_of(two_by_28(), request(57));
    EXPECT_NE(error_of(two_by_28(), request(0, {57})).find("at most 56"), std::string::npos);
    PlanRequest r = request(5, {14});
    EXPECT_NE(error_of(two_by_28(), r).find("4 fit"), std::string::npos)
        << error_of(two_by_28(), r);
    r = request(1);
    r.nodes_list = {7};
    EXPECT_NE(error_of(two_by_28(), r).find("nodes with CPUs: 0-1"), std::string::npos);
    r = request(1);
    r.cores_list = {500};
    EXPECT_NE(error_of(two_by_28(), r).find("usable CPUs: 0-111"), std::string::npos);
    EXPECT_NE(error_of(two_by_28(), request(-2)), "");
    EXPECT_NE(error_of(two_by_28(), request(0, {-3})), "");
    EXPECT_NE(error_of(two_by_28(), request(0, {3, 0})), "");
}

TEST(Planner, OfflineAndDisallowedCpusAreRefusedByName) {
    const Topology offline = load_topology(shared_topology("16em64t-4s2c2t-offlines.xml"));
    ASSERT_FALSE(offline.offline.empty());
    PlanRequest r;
    r.cores_list = {offline.offline.front()};
    EXPECT_NE(error_of(offline, r).find("is offline"), std::string::npos);

    const Topology cgroup = load_topology(test_topology("cgroup-4c-allowed0-1.xml"));
    r.cores_list = {2};
    EXPECT_NE(error_of(cgroup, r).find("CPU 2 is not allowed for this process"), std::string::npos)
        << error_of(cgroup, r);
    EXPECT_EQ(cpus_of(plan_instances(cgroup, request(0))), "0-1");
    EXPECT_NE(error_of(cgroup, request(3)).find("only 2 (CPUs 0-1)"), std::string::npos);
}

TEST(Planner, EfficiencyCoresOnlyWhenAsked) {
    const Topology t = load_topology(test_topology("hybrid-8p8e.xml"));
    EXPECT_EQ(cpus_of(plan_instances(t, request(2))), "0-3|4-7");
    PlanRequest r = request(2);
    r.use_e_cores = true;
    EXPECT_EQ(cpus_of(plan_instances(t, r)), "0-7|8-15");
    r = request(1);
    r.cores_list = {8, 9};
    EXPECT_NE(error_of(t, r).find("--use-e-cores"), std::string::npos);
}

TEST(Planner, MemoryOnlyNodesAreNeverBoundToCpus) {
    const Topology t = load_topology(test_topology("hbm-2s4c2t.xml"));
    PlanRequest r = request(2);
    r.bind_numa_node = true;
    EXPECT_EQ(nodes_of(plan_instances(t, r)), "0|2");
    r = request(1);
    r.nodes_list = {1};
    EXPECT_NE(error_of(t, r).find("memory but no CPUs"), std::string::npos);
}

TEST(Planner, MemoryNodesAreOnlyAllowedOnes) {
    // Allowed CPUs 0-3 sit on nodes 0-1, whose memory the cgroup does not allow.
    const Topology t = load_topology(shared_topology("16amd64-4n4c-cgroup-distance-merge.xml"));
    const Plan p = plan_instances(t, request(2));
    for (const auto& inst : p.instances)
        for (int node : inst.nodes) EXPECT_TRUE(t.find_node(node)->allowed) << node;
}

// Invariants of every plan on every topology, for a spread of requests.
TEST(PlannerInvariants, HoldOnEveryTopology) {
    std::vector<PlanRequest> requests;
    for (int n : {0, 1, 2, 3, 4, 7}) {
        for (std::vector<int> sizes : {std::vector<int>{}, {-1}, {1}, {2}, {3}})
            for (bool bind : {false, true})
                for (bool logical : {false, true}) {
                    PlanRequest r = request(n, sizes);
                    r.bind_numa_node = bind;
                    r.use_logical_cores = logical;
                    requests.push_back(r);
                    r.strategy = Strategy::kClose;
                    requests.push_back(r);
                }
    }
    PlanRequest latency, throughput;
    latency.latency_mode = true;
    throughput.throughput_mode = true;
    requests.push_back(latency);
    requests.push_back(throughput);

    int planned = 0, refused = 0;
    for (const auto& file : ipex::testing::all_topologies()) {
        const Topology t = load_topology(file);
        for (const auto& r : requests) {
            SCOPED_TRACE(file + " n=" + std::to_string(r.ninstances) +
                         " bind=" + std::to_string(r.bind_numa_node) +
                         " logical=" + std::to_string(r.use_logical_cores));
            Plan p;
            try {
                p = plan_instances(t, r);
            } catch (const PlanError&) {
                ++refused;
                continue;
            }
            ++planned;
            if (r.ninstances > 0) {
                EXPECT_EQ(p.instances.size(), static_cast<size_t>(r.ninstances));
            }
            std::set<int> seen;
            for (const auto& inst : p.instances) {
                EXPECT_FALSE(inst.cpus.empty());
                if (r.ncores_per_instance.size() == 1 && r.ncores_per_instance[0] > 0 &&
                    !r.latency_mode) {
                    EXPECT_EQ(inst.cpus.size(), static_cast<size_t>(r.ncores_per_instance[0]));
                }
                std::set<int> cores, nodes;
                for (int cpu : inst.cpus) {
                    EXPECT_TRUE(seen.insert(cpu).second) << "CPU " << cpu << " in two instances";
                    const Pu* pu = t.find_pu(cpu);
                    ASSERT_NE(pu, nullptr);
                    EXPECT_TRUE(pu->allowed);
                    EXPECT_FALSE(pu->efficiency_core());
                    cores.insert(pu->core);
                    nodes.insert(pu->numa);
                }
                if (!r.use_logical_cores) {
                    EXPECT_EQ(cores.size(), inst.cpus.size()) << "SMT siblings in one instance";
                }
                if (r.bind_numa_node || r.throughput_mode) {
                    EXPECT_EQ(nodes.size(), 1u);
                }
                for (int node : inst.nodes) EXPECT_TRUE(t.find_node(node)->allowed);
            }
        }
    }
    EXPECT_GT(planned, 1000);
    EXPECT_GT(refused, 0);  // small machines cannot take 7 instances of 3 cores
}

// The container sees nodes 1-4 only; CPUs 0-1, 12-13 and 14-15 sit in nodes 0, 6 and 7
// (packages 0, 6, 7), which are not in its topology. They are three nodes, not one.
TEST(Planner, CpusOfNodesOutsideTheContainerStayApartWhenBound) {
    const Topology t = load_topology(shared_topology("16amd64-8n2c-cpusets.xml"));
    for (int n : {3, 5, 6}) {
        PlanRequest r = request(n);
        r.bind_numa_node = true;
        const Plan p = plan_instances(t, r);
        ASSERT_EQ(p.instances.size(), static_cast<size_t>(n));
        for (const auto& inst : p.instances) {
            std::set<int> packages;
            for (int cpu : inst.cpus) packages.insert(t.find_pu(cpu)->package);
            EXPECT_EQ(packages.size(), 1u) << n << " instances: " << format_id_list(inst.cpus);
        }
    }
}
