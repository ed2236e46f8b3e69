// Options + topology + what is on disk → the complete LaunchPlan. Pure given the probes, so
// tests describe the machine instead of touching it.
#pragma once

#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipex/affinity/topology.h"
#include "ipex/allocator/env_policy.h"
#include "ipex/allocator/library_finder.h"
#include "launch_plan.h"
#include "options.h"
#include "rank_env.h"

namespace ipex::launcher {

struct MachineProbes {
    allocator::DirectoryLister list_dir;
    allocator::FileExists exists;
    std::function<bool(const std::string&)> is_executable;
    std::function<std::optional<std::string>(const std::string&)> which;  // PATH lookup
    std::function<std::string()> host_name;  // this node's short name, for rank labels
    // Whether the dynamic loader finds the bare library name (2nd) for the program (1st);
    // nullopt when it cannot tell. Unset: not asked.
    std::function<std::optional<bool>(const std::string&, const std::string&)> loader_finds;
};
MachineProbes real_probes(const allocator::Environment& env);
// The same probes, each question asked once: planning every rank of a dry run asks the same.
MachineProbes asking_once(const MachineProbes& probes);

// Facts fixed when ipexrun was built and installed.
struct InstallInfo {
    std::string build_python;                     // torch-capable interpreter found by CMake
    std::vector<std::string> runtime_candidates;  // where libipex_runtime.so may be
};
InstallInfo this_install();

// A plan that cannot be made from these options (exit code 2).
struct PlanBuildError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// With --rank-wrapper, the plan of the rank the environment names (see build_rank_plan).
// Otherwise, when started once per local rank by torchrun, srun or mpiexec and no option
// chooses CPUs or instances, only this process's disjoint share of the node.
// The planner's request: the options' id lists parsed against the topology, whose size
// bounds them (a range is refused before it is expanded). Throws PlanBuildError.
affinity::PlanRequest plan_request(const LaunchOptions& options,
                                   const affinity::Topology& topology);

LaunchPlan build_launch_plan(const LaunchOptions& options, const affinity::Topology& topology,
                             const allocator::Environment& env, const MachineProbes& probes,
                             const InstallInfo& install);

// One rank of a distributed launch: its share of its node, oneCCL's cores, the environment a
// local instance gets plus torchrun's contract (master from options.dist).
LaunchPlan build_rank_plan(const LaunchOptions& options, const affinity::Topology& topology,
                           const allocator::Environment& env, const MachineProbes& probes,
                           const InstallInfo& install, const RankInfo& rank);

}  // namespace ipex::launcher
