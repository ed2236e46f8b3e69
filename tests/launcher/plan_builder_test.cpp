#include "plan_builder.h"

#include <gtest/gtest.h>

#include <set>

#include "ipex/affinity/cpu_list.h"

using namespace ipex;
using launcher::build_launch_plan;
using launcher::LaunchOptions;
using launcher::PlanBuildError;

namespace {

// A machine described, not touched: which files exist, what is on PATH.
struct FakeMachine {
    std::set<std::string> files = {"/usr/bin/python3", "/opt/py/bin/python", "/work/x.py",
                                   "/usr/bin/numactl", "/prefix/lib/libipex_runtime.so"};
    std::map<std::string, std::vector<std::string>> dirs = {
        {"/usr/lib/x86_64-linux-gnu", {"libtcmalloc.so.4", "libiomp5.so"}}};

    launcher::MachineProbes probes() const {
        launcher::MachineProbes p;
        p.list_dir = [this](const std::string& d) {
            auto it = dirs.find(d);
            return it == dirs.end() ? std::vector<std::string>{} : it->second;
        };
        p.exists = [this](const std::string& f) { return files.count(f) > 0; };
        p.is_executable = p.exists;
        p.which = [this](const std::string& name) -> std::optional<std::string> {
            if (files.count("/usr/bin/" + name)) return "/usr/bin/" + name;
            return std::nullopt;
        };
        return p;
    }
};

const affinity::Topology& topology() {
    static const affinity::Topology t =
        affinity::load_topology(std::string(IPEX_TEST_TOPOLOGIES) + "/xeon-2s28c2t.xml");
    return t;
}

launcher::InstallInfo install() {
    return {"/usr/bin/python3",
            {"/prefix/lib/libipex_runtime.so", "/build/runtime/libipex_runtime.so"}};
}

LaunchOptions python_program() {
    LaunchOptions o;
    o.program = "/work/x.py";
    o.program_args = {"--batch", "a b"};
    o.plan.ninstances = 2;
    return o;
}

launcher::LaunchPlan build(const LaunchOptions& o, const allocator::Environment& env = {},
                           const FakeMachine& m = FakeMachine{}) {
    return build_launch_plan(o, topology(), env, m.probes(), install());
}

}  // namespace

TEST(PlanBuilder, PythonProgramsRunWithTheBuildInterpreterByDefault) {
    const auto plan = build(python_program());
    EXPECT_EQ(plan.python, "/usr/bin/python3");
    EXPECT_EQ(plan.python_source, "found at build time");
    EXPECT_EQ(plan.instances[0].argv,
              (std::vector<std::string>{"/usr/bin/python3", "-u", "/work/x.py", "--batch", "a b"}));
}

TEST(PlanBuilder, InterpreterPrecedence) {
    LaunchOptions o = python_program();
    EXPECT_EQ(build(o, {{"IPEXRUN_PYTHON", "/opt/py/bin/python"}}).python_source,
              "$IPEXRUN_PYTHON");
    o.python = "python3";  // a PATH name
    const auto plan = build(o, {{"IPEXRUN_PYTHON", "/opt/py/bin/python"}});
    EXPECT_EQ(plan.python, "/usr/bin/python3");
    EXPECT_EQ(plan.python_source, "--python");
    o.python = "/missing/python";
    EXPECT_THROW(build(o), PlanBuildError);
}

TEST(PlanBuilder, RuntimeIsPreloadedIntoPythonProgramsOnly) {
    const auto py = build(python_program());
    EXPECT_NE(py.instances[0].env.at("LD_PRELOAD").find("/prefix/lib/libipex_runtime.so"),
              std::string::npos);
    LaunchOptions o = python_program();
    o.no_python = true;
    o.program = "true";
    const auto native = build(o);
    EXPECT_EQ(native.instances[0].env.at("LD_PRELOAD").find("libipex_runtime"), std::string::npos);
    EXPECT_TRUE(native.python.empty());
    o.runtime_preload = launcher::RuntimePreload::kOn;
    EXPECT_NE(build(o).instances[0].env.at("LD_PRELOAD").find("libipex_runtime"),
              std::string::npos);
    FakeMachine without_runtime;
    without_runtime.files.erase("/prefix/lib/libipex_runtime.so");
    EXPECT_THROW(build(o, {}, without_runtime), PlanBuildError);
}

TEST(PlanBuilder, EachInstanceKnowsItsIndexAndTeamSize) {
    const auto plan = build(python_program());
    ASSERT_EQ(plan.instances.size(), 2u);
    EXPECT_EQ(plan.instances[1].env.at("IPEXRUN_INSTANCE_INDEX"), "1");
    EXPECT_EQ(plan.instances[1].omp_num_threads, 28);
    const auto preset = build(python_program(), {{"OMP_NUM_THREADS", "4"}});
    EXPECT_EQ(preset.instances[1].omp_num_threads, 4);
    EXPECT_EQ(preset.instances[1].env.count("OMP_NUM_THREADS"), 0u);
}

TEST(PlanBuilder, BindingToolsPrefixTheCommand) {
    LaunchOptions o = python_program();
    o.task_manager = launcher::TaskManager::kNumactl;
    EXPECT_EQ(build(o).instances[1].argv[0], "numactl");
    EXPECT_EQ(build(o).instances[1].argv[2], "28-55");
    o.task_manager = launcher::TaskManager::kTaskset;
    EXPECT_THROW(build(o), PlanBuildError);  // not on this fake PATH
    o.task_manager = launcher::TaskManager::kNone;
    const auto plan = build(o);
    EXPECT_EQ(plan.bind, launcher::BindMethod::kNone);
    EXPECT_EQ(plan.instances[0].env.at("KMP_AFFINITY"),
              "granularity=fine,proclist=[0-27],explicit");
}

TEST(PlanBuilder, ProgramChecks) {
    LaunchOptions o = python_program();
    o.program = "/work/missing.py";
    EXPECT_THROW(build(o), PlanBuildError);
    o.program = "server";
    EXPECT_THROW(build(o), PlanBuildError);  // not a Python file, no --no-python
    o.module = true;                         // a module name is not a file
    EXPECT_EQ(build(o).instances[0].argv[3], "server");
}

TEST(PlanBuilder, CodelessModeWrapsTheProgram) {
    LaunchOptions o = python_program();
    o.auto_ipex = true;
    o.dtype = "bfloat16";
    EXPECT_EQ(build(o).instances[0].argv,
              (std::vector<std::string>{"/usr/bin/python3", "-u", "-m", "ipex.cpu.auto_ipex",
                                        "--dtype", "bfloat16", "/work/x.py", "--batch", "a b"}));
}

namespace {

LaunchOptions whole_node_program() {
    LaunchOptions o = python_program();
    o.plan.ninstances = 0;
    return o;
}

const allocator::Environment kHydraRank3 = {
    {"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"MPI_LOCALRANKID", "1"}, {"MPI_LOCALNRANKS", "2"}};

}  // namespace

TEST(PlanBuilder, ARankWrapperPlansItsShareOfTheNodeWithTorchrunsContract) {
    LaunchOptions o = whole_node_program();
    o.dist.rank_wrapper = true;
    o.dist.master_addr = "10.0.0.1";
    o.dist.master_port = 29555;
    const auto plan = build(o, kHydraRank3);
    ASSERT_EQ(plan.instances.size(), 1u);
    const auto& rank = plan.instances[0];
    EXPECT_EQ(affinity::format_id_list(rank.cpus), "28-55");
    EXPECT_EQ(rank.memory_nodes, std::vector<int>{1});
    EXPECT_EQ(rank.label, "rank 3");
    EXPECT_EQ(rank.env.at("RANK"), "3");
    EXPECT_EQ(rank.env.at("LOCAL_RANK"), "1");
    EXPECT_EQ(rank.env.at("WORLD_SIZE"), "4");
    EXPECT_EQ(rank.env.at("GROUP_RANK"), "1");
    EXPECT_EQ(rank.env.at("MASTER_ADDR"), "10.0.0.1");
    EXPECT_EQ(rank.env.at("MASTER_PORT"), "29555");
    EXPECT_EQ(rank.env.at("OMP_NUM_THREADS"), "28");
    EXPECT_EQ(rank.env.count("CCL_WORKER_COUNT"), 0u);
    // The rank variables are ours even when the caller's environment has others.
    auto env = kHydraRank3;
    env["RANK"] = "0";
    EXPECT_EQ(build(o, env).instances[0].env.at("RANK"), "3");
}

TEST(PlanBuilder, RankWrapperGivesOneCclTheFirstCoresOfTheShare) {
    LaunchOptions o = whole_node_program();
    o.dist.rank_wrapper = true;
    o.dist.ccl_worker_count = 4;
    const auto rank = build(o, kHydraRank3).instances[0];
    EXPECT_EQ(rank.env.at("CCL_WORKER_COUNT"), "4");
    EXPECT_EQ(rank.env.at("CCL_WORKER_AFFINITY"), "28,29,30,31");
    EXPECT_EQ(rank.env.at("OMP_NUM_THREADS"), "24");
    EXPECT_EQ(rank.omp_num_threads, 24);
    EXPECT_EQ(affinity::format_id_list(rank.cpus), "28-55");  // the process keeps all of them
    // OpenMP's explicit places leave the workers' cores out.
    EXPECT_EQ(rank.env.at("KMP_AFFINITY"), "granularity=fine,proclist=[32-55],explicit");
    o.dist.ccl_worker_count = 28;
    EXPECT_THROW(build(o, kHydraRank3), affinity::PlanError);
}

TEST(PlanBuilder, ASlurmRankWithoutMasterTakesItsStepsFirstNode) {
    LaunchOptions o = whole_node_program();
    o.dist.rank_wrapper = true;
    allocator::Environment task = {{"SLURM_PROCID", "3"},
                                   {"SLURM_NTASKS", "4"},
                                   {"SLURM_LOCALID", "1"},
                                   {"SLURM_NODEID", "1"},
                                   {"SLURM_STEP_NUM_NODES", "2"},
                                   {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"},
                                   {"SLURM_LAUNCH_NODE_IPADDR", "10.0.0.9"}};
    const auto master = [&] { return build(o, task).instances[0].env.at("MASTER_ADDR"); };
    EXPECT_EQ(master(), "10.0.0.9");  // nothing better known: where srun started
    task["SLURM_JOB_NODELIST"] = "c[4-5]";
    EXPECT_EQ(master(), "c4");
    task["SLURM_STEP_NODELIST"] = "c[5-6]";  // the step's own nodes win over the job's
    EXPECT_EQ(master(), "c5");
    o.dist.master_addr = "10.0.0.1";  // the launching ipexrun's answer wins
    EXPECT_EQ(master(), "10.0.0.1");
}

TEST(PlanBuilder, ARankWrapperOutsideAnyLauncherIsRefused) {
    LaunchOptions o = whole_node_program();
    o.dist.rank_wrapper = true;
    EXPECT_THROW(build(o), PlanBuildError);
}

TEST(PlanBuilder, StartedPerLocalRankItTakesOnlyItsShare) {
    const allocator::Environment torchrun = {{"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"}};
    const auto plan = build(whole_node_program(), torchrun);
    ASSERT_EQ(plan.instances.size(), 1u);
    EXPECT_EQ(affinity::format_id_list(plan.instances[0].cpus), "28-55");
    EXPECT_EQ(plan.instances[0].env.count("RANK"), 0u);  // torchrun's own variables stay
    // An explicit instance or CPU option wins over sharing.
    EXPECT_EQ(build(python_program(), torchrun).instances.size(), 2u);
    LaunchOptions listed = whole_node_program();
    listed.plan.cores_list = {0, 1, 2, 3};
    EXPECT_EQ(affinity::format_id_list(build(listed, torchrun).instances[0].cpus), "0-3");
    // One local rank: the whole node.
    EXPECT_EQ(build(whole_node_program(), {{"LOCAL_RANK", "0"}, {"LOCAL_WORLD_SIZE", "1"}})
                  .instances[0]
                  .cpus.size(),
              56u);
}
