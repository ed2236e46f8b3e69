// A distributed launch decided without touching the machine: which MPI, which hosts, how
// many ranks per node, the master address and port, and the one command to run. The checks
// that do touch it (hosts reachable, port free) live in distributed_launch.cpp.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "ipex/affinity/topology.h"
#include "mpi_command.h"
#include "options.h"
#include "plan_builder.h"

namespace ipex::launcher {

struct DistributedInputs {
    std::vector<std::string> hostfile_hosts;  // parse_hostfile of --hostfile; {} without one
    std::string self;                         // absolute path of this ipexrun
    bool as_root = false;
    std::function<bool(const std::string&)> is_local_address;  // host names this machine
    // Slurm's address of a node of the allocation (scontrol's NodeAddr); nullopt if unknown.
    std::function<std::optional<std::string>(const std::string&)> slurm_node_address;
};

struct DistributedPlan {
    MpiJob job;
    std::vector<std::string> argv;  // mpi_command(job)
    std::string master_addr;        // "" under Slurm outside an allocation: each rank finds it
    int master_port = 29500;
    bool master_is_local = false;  // the port can be checked here
    std::vector<std::string> warnings;
};

// Throws DistributedError (code 2 for usage problems) with a one-line message.
DistributedPlan plan_distributed(const LaunchOptions& options, const affinity::Topology& topology,
                                 const allocator::Environment& env, const MachineProbes& probes,
                                 const DistributedInputs& inputs);

// The --dry-run document: the command, then per node the command each rank runs and each
// rank's plan on `topology` (every node is assumed to look like it).
std::string distributed_plan_json(const DistributedPlan& plan, const LaunchOptions& options,
                                  const affinity::Topology& topology,
                                  const allocator::Environment& env, const MachineProbes& probes,
                                  const InstallInfo& install);

// A rank whose program failed says so in one stderr line (through its logger, which prefixes
// "ipexrun [rank R HOST]: error: "). The launcher returns the code of the first such line: srun
// only reports the highest code of all tasks, and those it stopped end with 143.
std::string rank_failure_message(int code);
std::optional<int> parse_rank_failure(const std::string& stderr_line);

}  // namespace ipex::launcher
