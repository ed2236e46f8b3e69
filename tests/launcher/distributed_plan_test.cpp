#include "distributed_plan.h"
#include "slurm_nodes.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <set>

using namespace ipex;
using namespace ipex::launcher;
using Args = std::vector<std::string>;

namespace {

const affinity::Topology& two_by_28() {
    static const affinity::Topology t =
        affinity::load_topology(std::string(IPEX_TEST_TOPOLOGIES) + "/xeon-2s28c2t.xml");
    return t;
}

// A machine with the named programs in /usr/bin and nothing else.
MachineProbes machine_with(std::set<std::string> programs) {
    MachineProbes p;
    p.list_dir = [](const std::string&) { return std::vector<std::string>{}; };
    p.exists = [programs](const std::string& f) {
        return f == "/usr/bin/python3" || f == "/work/x.py" ||
               programs.count(f.substr(f.rfind('/') + 1)) > 0;
    };
    p.is_executable = p.exists;
    p.which = [programs](const std::string& name) -> std::optional<std::string> {
        if (programs.count(name) || name == "python3") return "/usr/bin/" + name;
        return std::nullopt;
    };
    p.host_name = [] { return std::string("n1"); };
    return p;
}

LaunchOptions two_nodes() {
    LaunchOptions o;
    o.dist.nnodes = 2;
    o.dist.hostfile = "hosts";
    o.no_python = true;
    o.program = "true";
    o.option_args = {"--nnodes", "2", "--hostfile", "hosts", "--no-python"};
    return o;
}

DistributedInputs inputs(Args hosts = {"10.9.0.1", "10.9.0.2"}) {
    DistributedInputs in;
    in.hostfile_hosts = std::move(hosts);
    in.self = "/opt/bin/ipexrun";
    in.is_local_address = [](const std::string& h) { return h == "10.9.0.1"; };
    return in;
}

DistributedPlan plan(const LaunchOptions& o, const allocator::Environment& env = {},
                     const DistributedInputs& in = inputs(),
                     std::set<std::string> programs = {"mpiexec.hydra", "mpiexec.openmpi",
                                                       "srun"}) {
    return plan_distributed(o, two_by_28(), env, machine_with(std::move(programs)), in);
}

int code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const DistributedError& e) {
        return e.code;
    }
    return 0;
}

}  // namespace

TEST(DistributedPlan, HydraOverTheHostfileWithOneRankPerNumaNode) {
    const auto p = plan(two_nodes());
    EXPECT_EQ(p.job.ppn, 2);  // two NUMA nodes on this topology
    EXPECT_EQ(p.master_addr, "10.9.0.1");
    EXPECT_TRUE(p.master_is_local);
    EXPECT_EQ(p.master_port, 29500);
    EXPECT_EQ(p.argv, (Args{"/usr/bin/mpiexec.hydra",
                            "-np",
                            "4",
                            "-ppn",
                            "2",
                            "-hosts",
                            "10.9.0.1,10.9.0.2",
                            "-localhost",
                            "10.9.0.1",
                            "/opt/bin/ipexrun",
                            "--rank-wrapper",
                            "--nnodes",
                            "2",
                            "--no-python",
                            "--master-addr",
                            "10.9.0.1",
                            "--master-port",
                            "29500",
                            "--",
                            "true"}));
}

TEST(DistributedPlan, MasterPrecedenceOptionThenEnvironmentThenHostfile) {
    LaunchOptions o = two_nodes();
    EXPECT_EQ(plan(o, {{"MASTER_ADDR", "10.9.0.2"}, {"MASTER_PORT", "1234"}}).master_addr,
              "10.9.0.2");
    EXPECT_EQ(plan(o, {{"MASTER_PORT", "1234"}}).master_port, 1234);
    o.dist.master_addr = "10.9.0.7";
    o.dist.master_port = 4321;
    const auto p = plan(o, {{"MASTER_ADDR", "10.9.0.2"}, {"MASTER_PORT", "1234"}});
    EXPECT_EQ(p.master_addr, "10.9.0.7");
    EXPECT_EQ(p.master_port, 4321);
    EXPECT_FALSE(p.master_is_local);
    EXPECT_EQ(code_of([&] { plan(two_nodes(), {{"MASTER_PORT", "http"}}); }), 2);
}

TEST(DistributedPlan, NodesListAndExplicitRanksPerNode) {
    LaunchOptions o = two_nodes();
    o.plan.nodes_list = {0, 1};
    EXPECT_EQ(plan(o).job.ppn, 2);
    o.plan.nodes_list = {1};
    EXPECT_EQ(plan(o).job.ppn, 1);
    o.dist.nprocs_per_node = 3;
    EXPECT_EQ(plan(o).job.ppn, 3);
}

TEST(DistributedPlan, UsageErrorsBeforeAnythingStarts) {
    LaunchOptions o = two_nodes();
    EXPECT_EQ(code_of([&] { plan(o, {}, inputs({"10.9.0.1"})); }), 2);  // nnodes > hosts
    EXPECT_EQ(code_of([&] { plan(o, {}, inputs({})); }), 2);            // empty hostfile
    o.dist.hostfile.clear();
    EXPECT_EQ(code_of([&] { plan(o, {}, inputs({})); }), 2);  // 2 nodes need a hostfile
    o.dist.hostfile = "hosts";
    o.dist.extra_mpi_params = "-x 'open";
    EXPECT_EQ(code_of([&] { plan(o); }), 2);
    o.dist.extra_mpi_params.clear();
    EXPECT_EQ(code_of([&] { plan(o, {}, inputs({"10.9.0.1", "-oProxyCommand=x"})); }), 2);
    EXPECT_EQ(code_of([&] { plan(o, {}, inputs({"10.9.0.1", "a;b"})); }), 2);
    LaunchOptions huge = o;
    huge.dist.nnodes = 2;
    huge.dist.nprocs_per_node = 1 << 30;
    EXPECT_EQ(code_of([&] { plan(huge); }), 2);
    o.dist.mpi = MpiChoice::kOpenMpi;
    EXPECT_EQ(code_of([&] { plan(o, {}, inputs(), {"mpiexec.hydra"}); }), 1);  // missing MPI
}

TEST(DistributedPlan, SlurmChecksTheAllocation) {
    LaunchOptions o = two_nodes();
    o.dist.hostfile.clear();
    const allocator::Environment job = {
        {"SLURM_JOB_ID", "42"}, {"SLURM_NTASKS", "4"}, {"SLURM_JOB_NUM_NODES", "2"}};
    const auto p = plan(o, job, inputs({}));
    EXPECT_EQ(p.job.mpi.kind, MpiKind::kSlurm);
    EXPECT_EQ(p.master_addr, "");  // no node list: each rank reads its step's
    EXPECT_EQ(p.argv[0], "/usr/bin/srun");
    auto small = job;
    small["SLURM_NTASKS"] = "3";
    try {
        plan(o, small, inputs({}));
        FAIL();
    } catch (const DistributedError& e) {
        EXPECT_EQ(std::string(e.what()),
                  "the Slurm allocation (job 42) has 3 tasks; 2 nodes x 2 ranks need 4");
    }
    small = job;
    small["SLURM_JOB_NUM_NODES"] = "1";
    EXPECT_EQ(code_of([&] { plan(o, small, inputs({})); }), 1);
}

TEST(DistributedPlan, UnderSlurmTheMasterIsTheAllocationsFirstNode) {
    LaunchOptions o = two_nodes();
    o.dist.hostfile.clear();
    // ipexrun runs on the second node (salloc there): its launch address is not the master.
    const allocator::Environment job = {{"SLURM_JOB_ID", "42"},
                                        {"SLURM_NTASKS", "4"},
                                        {"SLURM_JOB_NUM_NODES", "2"},
                                        {"SLURM_JOB_NODELIST", "node[07-08]"},
                                        {"SLURM_LAUNCH_NODE_IPADDR", "10.9.0.8"}};
    DistributedInputs in = inputs({});
    std::vector<std::string> asked;
    in.slurm_node_address = [&asked](const std::string& node) -> std::optional<std::string> {
        asked.push_back(node);
        return node == "node07" ? std::optional<std::string>("10.9.0.7") : std::nullopt;
    };
    auto p = plan(o, job, in);
    EXPECT_EQ(p.master_addr, "10.9.0.7");
    EXPECT_EQ(asked, std::vector<std::string>{"node07"});
    const auto& argv = p.job.rank_argv;
    const auto at = std::find(argv.begin(), argv.end(), "--master-addr");
    ASSERT_NE(at, argv.end());
    EXPECT_EQ(*(at + 1), "10.9.0.7");
    // scontrol silent: the node's name, which the cluster resolves.
    in.slurm_node_address = [](const std::string&) { return std::nullopt; };
    EXPECT_EQ(plan(o, job, in).master_addr, "node07");
    // An explicit master still wins, and the old variable name works.
    auto env = job;
    env.erase("SLURM_JOB_NODELIST");
    env["SLURM_NODELIST"] = "a1,b2";
    EXPECT_EQ(plan(o, env, in).master_addr, "a1");
    env["MASTER_ADDR"] = "10.1.1.1";
    EXPECT_EQ(plan(o, env, in).master_addr, "10.1.1.1");
}

TEST(SlurmNodes, FirstHostOfACompressedList) {
    EXPECT_EQ(first_slurm_host("n[1-2]"), "n1");
    EXPECT_EQ(first_slurm_host("node[01-04,07],gpu3"), "node01");
    EXPECT_EQ(first_slurm_host("gpu3,node[01-04]"), "gpu3");
    EXPECT_EQ(first_slurm_host("rack[2,5]-n[003-9]"), "rack2-n003");
    EXPECT_EQ(first_slurm_host("n1[0-1]"), "n10");
    EXPECT_EQ(first_slurm_host("solo"), "solo");
    for (const char* bad : {"", ",n1", "n[", "n[]", "n[a-b]", "n]1", "[1-2]x[", "n[1x2]"})
        EXPECT_FALSE(first_slurm_host(bad)) << bad;
}

TEST(SlurmNodes, AddressFromScontrol) {
    EXPECT_EQ(slurm_node_address("NodeName=n1 Arch=x86_64 CoresPerSocket=1 NodeAddr=10.2.0.1 "
                                 "NodeHostName=n1 Version=22.05.8\n"),
              "10.2.0.1");
    EXPECT_EQ(slurm_node_address("NodeName=n1\n   NodeAddr=n1 NodeHostName=n1\n"), "n1");
    EXPECT_FALSE(slurm_node_address("Node n9 not found\n"));
    EXPECT_FALSE(slurm_node_address("NodeName=n1 NodeAddr= NodeHostName=n1"));
    EXPECT_FALSE(slurm_node_address("NodeName=n1 OldNodeAddr=1.2.3.4"));
}

TEST(DistributedPlan, DryRunShowsEveryRanksShareAndContract) {
    LaunchOptions o = two_nodes();
    o.dist.ccl_worker_count = 2;
    const auto p = plan(o);
    const auto install = InstallInfo{"/usr/bin/python3", {}};
    const auto doc = nlohmann::json::parse(
        distributed_plan_json(p, o, two_by_28(), {}, machine_with({"mpiexec.hydra"}), install));
    EXPECT_EQ(doc["mpi"], "hydra");
    EXPECT_EQ(doc["command"][0], "/usr/bin/mpiexec.hydra");
    ASSERT_EQ(doc["nodes"].size(), 2u);
    const auto& rank3 = doc["nodes"][1]["ranks"][1];
    EXPECT_EQ(rank3["rank"], 3);
    EXPECT_EQ(rank3["local_rank"], 1);
    EXPECT_EQ(rank3["cpus"].front(), 28);
    EXPECT_EQ(rank3["cpus"].back(), 55);
    EXPECT_EQ(rank3["env"]["RANK"], "3");
    EXPECT_EQ(rank3["env"]["GROUP_RANK"], "1");
    EXPECT_EQ(rank3["env"]["MASTER_ADDR"], "10.9.0.1");
    EXPECT_EQ(rank3["env"]["CCL_WORKER_AFFINITY"], "28,29");
    EXPECT_EQ(rank3["env"]["CCL_WORKER_COUNT"], "2");
    EXPECT_EQ(rank3["omp_num_threads"], 26);
}

TEST(RankFailure, TheLauncherReadsTheCodeBackFromTheRanksLine) {
    const std::string line = "ipexrun [rank 2 n2]: error: " + rank_failure_message(9);
    EXPECT_EQ(parse_rank_failure(line), 9);
    EXPECT_EQ(parse_rank_failure("[rank 2 n2] " + rank_failure_message(9)), std::nullopt);
    EXPECT_EQ(parse_rank_failure("ipexrun [rank 2 n2]: error: something else"), std::nullopt);
    EXPECT_EQ(parse_rank_failure("ipexrun [rank 2 n2]: error: " + rank_failure_message(0)),
              std::nullopt);
}

TEST(DistributedPlan, DryRunAsksTheFileSystemOncePerQuestion) {
    LaunchOptions o = two_nodes();
    const auto p = plan(o);
    MachineProbes probes = machine_with({"mpiexec.hydra"});
    std::map<std::string, int> listed;
    probes.list_dir = [&listed](const std::string& dir) {
        ++listed[dir];
        return std::vector<std::string>{};
    };
    distributed_plan_json(p, o, two_by_28(), {}, probes, InstallInfo{"/usr/bin/python3", {}});
    ASSERT_FALSE(listed.empty());
    for (const auto& [dir, times] : listed) EXPECT_EQ(times, 1) << dir;
}

TEST(DistributedPlan, ProbesAskedOnceStillAnswerEveryQuestion) {
    MachineProbes probes = machine_with({"mpiexec.hydra"});
    int asked = 0;
    probes.loader_finds = [&asked](const std::string&, const std::string&) {
        ++asked;
        return std::optional<bool>(true);
    };
    const MachineProbes once = asking_once(probes);
    ASSERT_TRUE(once.loader_finds);
    EXPECT_EQ(once.loader_finds("prog", "libx.so"), true);
    EXPECT_EQ(asked, 1);
    EXPECT_EQ(once.which("mpiexec.hydra"), "/usr/bin/mpiexec.hydra");
    EXPECT_EQ(once.host_name(), "n1");
}
