#include "plan_builder.h"

#include <linux/limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>

#include "host_name.h"
#include "ipex/affinity/cpu_list.h"
#include "ipex/affinity/planner.h"
#include "ipex/affinity/rank_share.h"
#include "ipex/affinity/user_text.h"
#include "loader_probe.h"
#include "path_search.h"
#include "slurm_nodes.h"

#ifndef IPEX_BUILD_PYTHON
#define IPEX_BUILD_PYTHON "/usr/bin/python3"
#endif
#ifndef IPEX_RUNTIME_BUILD_PATH
#define IPEX_RUNTIME_BUILD_PATH ""
#endif

namespace ipex::launcher {
namespace {

std::string lookup(const allocator::Environment& env, const std::string& name) {
    auto it = env.find(name);
    return it == env.end() ? "" : it->second;
}

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() &&
           s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The interpreter for Python programs: --python, then $IPEXRUN_PYTHON, then the build's.
void choose_python(const LaunchOptions& o, const allocator::Environment& env,
                   const MachineProbes& probes, const InstallInfo& install, LaunchPlan& plan) {
    struct Candidate {
        std::string path, source;
    };
    const Candidate candidates[] = {{o.python, "--python"},
                                    {lookup(env, "IPEXRUN_PYTHON"), "$IPEXRUN_PYTHON"},
                                    {install.build_python, "found at build time"}};
    for (const auto& c : candidates) {
        if (c.path.empty()) continue;
        std::string path = c.path;
        if (path.find('/') == std::string::npos) {
            auto found = probes.which(path);
            if (!found)
                throw PlanBuildError("Python interpreter " + affinity::quote_text(path) + " (" +
                                     c.source + ") is not on PATH");
            path = *found;
        }
        if (!probes.is_executable(path))
            throw PlanBuildError("Python interpreter " + affinity::quote_text(path) + " (" +
                                 c.source + ") does not exist or is not executable");
        plan.python = path;
        plan.python_source = c.source;
        return;
    }
    throw PlanBuildError("no Python interpreter: pass --python or set $IPEXRUN_PYTHON");
}

std::vector<std::string> program_argv(const LaunchOptions& o, const LaunchPlan& plan,
                                      const MachineProbes& probes) {
    std::vector<std::string> argv;
    if (o.no_python) {
        argv.push_back(o.program);
    } else {
        argv = {plan.python, "-u"};
        if (o.auto_ipex) {
            // The runner hooks torch.nn.Module.__call__, then runs the program as __main__.
            argv.insert(argv.end(), {"-m", "ipex.cpu.auto_ipex", "--dtype", o.dtype});
            if (o.auto_ipex_verbose) argv.push_back("--auto-ipex-verbose");
            if (o.ipex_graph_mode) argv.push_back("--ipex-graph-mode");
            if (o.disable_ipex_graph_mode) argv.push_back("--disable-ipex-graph-mode");
            if (o.module) argv.push_back("--module");
        } else if (o.module) {
            argv.push_back("-m");
        }
        if (!o.module) {
            if (!ends_with(o.program, ".py") && !probes.exists(o.program))
                throw PlanBuildError(affinity::quote_text(o.program) +
                                     " is not a Python file; add --no-python to run it directly");
            if (!probes.exists(o.program))
                throw PlanBuildError("Python program " + affinity::quote_text(o.program) +
                                     " does not exist");
        }
        argv.push_back(o.program);
    }
    argv.insert(argv.end(), o.program_args.begin(), o.program_args.end());
    return argv;
}

std::string runtime_library(const LaunchOptions& o, const MachineProbes& probes,
                            const InstallInfo& install) {
    if (o.runtime_preload == RuntimePreload::kOff) return "";
    if (o.runtime_preload == RuntimePreload::kAuto && o.no_python) return "";
    for (const auto& path : install.runtime_candidates)
        if (!path.empty() && probes.exists(path)) return path;
    if (o.runtime_preload == RuntimePreload::kOn)
        throw PlanBuildError("--runtime-preload on, but libipex_runtime.so is not installed");
    return "";
}

BindMethod bind_method(const LaunchOptions& o, const MachineProbes& probes) {
    switch (o.task_manager) {
        case TaskManager::kAuto:
            return BindMethod::kDirect;
        case TaskManager::kNone:
            return BindMethod::kNone;
        case TaskManager::kNumactl:
            if (!probes.which("numactl"))
                throw PlanBuildError("--multi-task-manager numactl: numactl is not on PATH");
            return BindMethod::kNumactl;
        case TaskManager::kTaskset:
            if (!probes.which("taskset"))
                throw PlanBuildError("--multi-task-manager taskset: taskset is not on PATH");
            return BindMethod::kTaskset;
    }
    return BindMethod::kDirect;
}

std::vector<std::string> binding_prefix(BindMethod method, const InstanceLaunch& inst) {
    const std::string cpus = affinity::format_id_list(inst.cpus);
    if (method == BindMethod::kNumactl) {
        std::vector<std::string> prefix = {"numactl", "-C", cpus};
        if (!inst.memory_nodes.empty()) {
            prefix.push_back("-m");
            prefix.push_back(affinity::format_id_list(inst.memory_nodes));
        }
        return prefix;
    }
    if (method == BindMethod::kTaskset) return {"taskset", "-c", cpus};
    return {};
}

// The option's id list, refused as soon as an id is above `max_id` (so that no range is
// expanded beyond the topology's size).
std::vector<int> id_list(const char* option, const std::string& text, int max_id) {
    if (text.empty()) return {};
    try {
        return affinity::parse_id_list(text, max_id);
    } catch (const affinity::CpuListError& e) {
        throw PlanBuildError(std::string(option) + ": " + e.what());
    }
}

// Options that say which CPUs or how many instances: they win over sharing the node.
bool chooses_cpus(const affinity::PlanRequest& r) {
    return r.ninstances > 0 || !r.ncores_per_instance.empty() || !r.cores_list.empty() ||
           !r.instance_idx.empty() || r.latency_mode || r.throughput_mode;
}

// With oneCCL workers on some of the rank's CPUs, OpenMP's places must leave them out (the
// process itself may run on all of them). Only the launcher's own values are narrowed.
void keep_openmp_off(allocator::Environment& env, const std::vector<int>& omp_cpus) {
    if (env.count("OMP_PLACES")) {
        std::string places;
        for (int cpu : omp_cpus)
            places += (places.empty() ? "{" : ",{") + std::to_string(cpu) + "}";
        env["OMP_PLACES"] = places;
    }
    if (env.count("KMP_AFFINITY"))
        env["KMP_AFFINITY"] =
            "granularity=fine,proclist=[" + affinity::format_id_list(omp_cpus) + "],explicit";
}

// Without a master from the launching ipexrun (srun outside an allocation): rank 0 runs on
// the step's first node, under the name Slurm gives it; else where srun was started.
std::string step_master(const allocator::Environment& env) {
    for (const char* list : {"SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST"})
        if (const auto first = first_slurm_host(lookup(env, list))) return *first;
    const std::string launch_node = lookup(env, "SLURM_LAUNCH_NODE_IPADDR");
    return launch_node.empty() ? "127.0.0.1" : launch_node;
}

// How the instances' CPUs are chosen: the planner on its own, or one rank's share.
struct RankContext {
    const RankInfo* rank = nullptr;  // null: plain instances
    bool distributed = false;        // a rank of ipexrun's own distributed launch
};

LaunchPlan build(const LaunchOptions& o, const affinity::Topology& topology,
                 const allocator::Environment& env, const MachineProbes& probes,
                 const InstallInfo& install, RankContext context);

}  // namespace

MachineProbes real_probes(const allocator::Environment& env) {
    MachineProbes p;
    p.list_dir = allocator::real_directory_lister();
    // A library is a file: a folder of that name is no more loadable than nothing.
    p.exists = [](const std::string& path) {
        struct stat info {};
        return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode);
    };
    p.is_executable = is_executable_file;
    p.which = [path_var = lookup(env, "PATH"), is_exec = p.is_executable](const std::string& name) {
        return search_path(path_var, name, is_exec);
    };
    p.host_name = [] { return short_host_name(this_host_name()); };
    p.loader_finds = [env](const std::string& program, const std::string& name) {
        return ipex::launcher::loader_finds(program, name, env);
    };
    return p;
}

namespace {

template <typename Answer>
std::function<Answer(const std::string&)> remembered(
    std::function<Answer(const std::string&)> ask) {
    if (!ask) return ask;
    auto answers = std::make_shared<std::map<std::string, Answer>>();
    return [ask = std::move(ask), answers](const std::string& question) {
        auto it = answers->find(question);
        if (it == answers->end()) it = answers->emplace(question, ask(question)).first;
        return it->second;
    };
}

}  // namespace

MachineProbes asking_once(const MachineProbes& probes) {
    MachineProbes once = probes;  // a probe not remembered here still answers
    once.list_dir = remembered(probes.list_dir);
    once.exists = remembered(probes.exists);
    once.is_executable = remembered(probes.is_executable);
    once.which = remembered(probes.which);
    if (probes.host_name)
        once.host_name = [name = std::make_shared<std::optional<std::string>>(),
                          ask = probes.host_name] {
            if (!*name) *name = ask();
            return **name;
        };
    return once;
}

InstallInfo this_install() {
    InstallInfo info;
    info.build_python = IPEX_BUILD_PYTHON;
    // Installed layout first (<prefix>/bin/ipexrun → <prefix>/lib/libipex_runtime.so), then
    // the build tree this binary came from.
    char self[PATH_MAX] = {};
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        std::string prefix(self, static_cast<size_t>(n));
        prefix = prefix.substr(0, prefix.rfind('/'));  // <prefix>/bin
        prefix = prefix.substr(0, prefix.rfind('/'));  // <prefix>
        info.runtime_candidates.push_back(prefix + "/lib/libipex_runtime.so");
    }
    info.runtime_candidates.push_back(IPEX_RUNTIME_BUILD_PATH);
    return info;
}

affinity::PlanRequest plan_request(const LaunchOptions& o, const affinity::Topology& topology) {
    int max_cpu = 0, max_node = 0;
    for (const auto& pu : topology.pus) max_cpu = std::max(max_cpu, pu.os);
    for (int cpu : topology.offline) max_cpu = std::max(max_cpu, cpu);
    for (const auto& node : topology.nodes) max_node = std::max(max_node, node.os);
    // There are never more instances than CPUs.
    const int max_instance = std::max(0, static_cast<int>(topology.pus.size()) - 1);

    affinity::PlanRequest request = o.plan;  // lists set there directly (tests) stay
    if (!o.cores_list.empty()) request.cores_list = id_list("--cores-list", o.cores_list, max_cpu);
    if (!o.nodes_list.empty()) request.nodes_list = id_list("--nodes-list", o.nodes_list, max_node);
    if (runs_a_subset(o))
        request.instance_idx = id_list("--instance-idx", o.instance_idx, max_instance);
    return request;
}

LaunchPlan build_launch_plan(const LaunchOptions& o, const affinity::Topology& topology,
                             const allocator::Environment& env, const MachineProbes& probes,
                             const InstallInfo& install) {
    if (o.dist.rank_wrapper) {
        const auto rank = rank_from_launcher(env);
        if (!rank)
            throw PlanBuildError(
                "--rank-wrapper runs under mpiexec or srun, but none of their rank variables "
                "(PMI_RANK, OMPI_COMM_WORLD_RANK, SLURM_PROCID) is set");
        return build_rank_plan(o, topology, env, probes, install, *rank);
    }
    if (!chooses_cpus(plan_request(o, topology)))
        if (const auto local = local_rank_from_env(env); local && local->local_world_size > 1) {
            LaunchPlan plan = build(o, topology, env, probes, install, {&*local, false});
            plan.warnings.push_back("started as local rank " + std::to_string(local->local_rank) +
                                    " of " + std::to_string(local->local_world_size) + " (" +
                                    local->source + "): using this rank's share of the node");
            return plan;
        }
    return build(o, topology, env, probes, install, {});
}

LaunchPlan build_rank_plan(const LaunchOptions& o, const affinity::Topology& topology,
                           const allocator::Environment& env, const MachineProbes& probes,
                           const InstallInfo& install, const RankInfo& rank) {
    return build(o, topology, env, probes, install, {&rank, true});
}

namespace {

LaunchPlan build(const LaunchOptions& o, const affinity::Topology& topology,
                 const allocator::Environment& env, const MachineProbes& probes,
                 const InstallInfo& install, RankContext context) {
    LaunchPlan plan;
    plan.warnings = o.notes;
    if (!o.no_python) choose_python(o, env, probes, install, plan);
    plan.bind = bind_method(o, probes);

    const RankInfo* rank = context.rank;
    const affinity::PlanRequest request = plan_request(o, topology);
    affinity::Plan cpus = rank ? affinity::plan_rank_share(topology, request, rank->local_rank,
                                                           rank->local_world_size)
                               : affinity::plan_instances(topology, request);
    plan.warnings.insert(plan.warnings.end(), cpus.warnings.begin(), cpus.warnings.end());
    // oneCCL's workers take the first cores of a rank's share; OpenMP plans with the rest.
    std::vector<affinity::CclSplit> splits;
    for (const auto& inst : cpus.instances)
        splits.push_back(context.distributed
                             ? affinity::split_for_ccl(topology, inst.cpus, o.dist.ccl_worker_count,
                                                       o.dist.logical_cores_for_ccl,
                                                       request.cores_list)
                             : affinity::split_for_ccl(topology, inst.cpus, 0, false));

    allocator::EnvRequest env_request = o.env;
    env_request.affinity_through_env = plan.bind == BindMethod::kNone;
    env_request.runtime_library = runtime_library(o, probes, install);
    allocator::SearchRoots roots{lookup(env, "CONDA_PREFIX"), lookup(env, "VIRTUAL_ENV"),
                                 lookup(env, "HOME")};
    const auto dirs = allocator::library_search_dirs(roots);
    // Three names are looked up in the same folders: list each folder once, and only where
    // the unversioned name (what the -dev packages install) is not there.
    std::map<std::string, std::vector<std::string>> listed;
    const allocator::DirectoryLister list_once = [&](const std::string& dir) {
        auto it = listed.find(dir);
        if (it == listed.end()) it = listed.emplace(dir, probes.list_dir(dir)).first;
        return it->second;
    };
    // Only what the request can use is looked for: listing big folders costs start-up time.
    using allocator::MemoryAllocator;
    using allocator::OmpRuntime;
    const auto wants = [&](MemoryAllocator kind) {
        return env_request.allocator == kind || env_request.allocator == MemoryAllocator::kAuto;
    };
    allocator::AvailableLibraries libs;
    if (wants(MemoryAllocator::kTcmalloc))
        libs.tcmalloc = allocator::find_library("tcmalloc", dirs, list_once, probes.exists);
    if (wants(MemoryAllocator::kJemalloc))
        libs.jemalloc = allocator::find_library("jemalloc", dirs, list_once, probes.exists);
    if (env_request.omp != OmpRuntime::kDefault)
        libs.iomp = allocator::find_library("iomp5", dirs, list_once, probes.exists);
    std::vector<std::vector<int>> instance_cpus;
    for (const auto& split : splits) instance_cpus.push_back(split.omp_cpus);
    // Bare LD_PRELOAD names are searched for the program the loader starts in each instance
    // (its RPATH counts).
    const allocator::LoaderFinds loader_finds =
        [&](const std::string& name) -> std::optional<bool> {
        if (!probes.loader_finds) return std::nullopt;
        std::string program = o.no_python ? o.program : plan.python;
        if (program.find('/') == std::string::npos)
            program = probes.which ? probes.which(program).value_or("") : "";
        if (program.empty()) return std::nullopt;
        return probes.loader_finds(program, name);
    };
    allocator::EnvPlan env_plan = allocator::plan_environment(env_request, libs, env, probes.exists,
                                                              instance_cpus, loader_finds);
    plan.warnings.insert(plan.warnings.end(), env_plan.warnings.begin(), env_plan.warnings.end());
    plan.allocator = env_plan.allocator;
    plan.omp_runtime = env_plan.omp_runtime;

    const std::vector<std::string> argv = program_argv(o, plan, probes);
    for (size_t i = 0; i < cpus.instances.size(); ++i) {
        InstanceLaunch inst;
        inst.index = cpus.instances[i].index;
        inst.cpus = splits[i].all_cpus;
        inst.memory_nodes = cpus.instances[i].nodes;
        inst.env = env_plan.instances[i];
        // Lets a program shard its work by instance, like LOCAL_RANK under torchrun.
        inst.env["IPEXRUN_INSTANCE_INDEX"] = std::to_string(inst.index);
        // The instance's CPUs as planned: OpenMP binding narrows the main thread's own mask
        // to one CPU, so a program cannot read its share back from the kernel.
        inst.env["IPEXRUN_CPUS"] = affinity::format_id_list(inst.cpus);
        // The team size really used: ours, or the user's OMP_NUM_THREADS where that wins.
        const auto ours = inst.env.find("OMP_NUM_THREADS");
        const std::string threads =
            ours != inst.env.end() ? ours->second : lookup(env, "OMP_NUM_THREADS");
        inst.omp_num_threads = threads.empty() ? static_cast<int>(splits[i].omp_cpus.size())
                                               : std::atoi(threads.c_str());
        if (context.distributed) {
            const std::string master =
                !o.dist.master_addr.empty() ? o.dist.master_addr : step_master(env);
            const int port = o.dist.master_port > 0 ? o.dist.master_port : 29500;
            for (auto& [name, value] : torchrun_environment(*rank, master, port))
                inst.env[name] = value;
            if (!splits[i].ccl_cpus.empty()) {
                inst.env["CCL_WORKER_COUNT"] = std::to_string(splits[i].ccl_cpus.size());
                // oneCCL wants one CPU a worker, in worker order.
                std::string list;
                for (int cpu : splits[i].ccl_cpus)
                    list += (list.empty() ? "" : ",") + std::to_string(cpu);
                inst.env["CCL_WORKER_AFFINITY"] = list;
                keep_openmp_off(inst.env, splits[i].omp_cpus);
            }
            const std::string host = probes.host_name ? probes.host_name() : "";
            inst.label = "rank " + std::to_string(rank->rank) + (host.empty() ? "" : " " + host);
        }
        inst.argv = binding_prefix(plan.bind, inst);
        inst.argv.insert(inst.argv.end(), argv.begin(), argv.end());
        plan.instances.push_back(std::move(inst));
    }
    return plan;
}

}  // namespace
}  // namespace ipex::launcher
