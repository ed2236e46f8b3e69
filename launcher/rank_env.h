// Which rank this process is, read from the variables a parallel launcher sets (MPICH hydra,
// Open MPI, Slurm's srun, torchrun), and the variables a rank hands to its program. Pure.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

struct RankInfo {
    int rank = 0;
    int world_size = 1;
    int local_rank = 0;
    int local_world_size = 1;
    int node_rank = 0;   // GROUP_RANK: which node, counted from 0
    int nnodes = 1;      // GROUP_WORLD_SIZE
    std::string source;  // "MPICH hydra", "Open MPI", "Slurm", "torchrun"
};

// A launcher's variable that is present but not a usable number (one line, names it).
struct RankEnvError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// The global rank as an MPI launcher or srun set it for the process it started: Open MPI's
// OMPI_COMM_WORLD_*, then hydra's PMI_RANK with MPI_LOCALRANKID (hydra run from inside an
// allocation still sees Slurm's variables of its proxy), then srun's SLURM_PROCID.
std::optional<RankInfo> rank_from_launcher(const allocator::Environment& env);

// Only where this process sits among the processes on its node: torchrun's LOCAL_RANK and
// LOCAL_WORLD_SIZE first, then the MPI launchers' and srun's. Fields other than the local
// ones are those of rank_from_launcher when known.
std::optional<RankInfo> local_rank_from_env(const allocator::Environment& env);

// Slurm's "2(x3),1" task counts per node: the count of node `node`.
std::optional<int> tasks_on_node(const std::string& tasks_per_node, int node);

// torchrun 1.13's contract for one rank, so torch.distributed's env:// works unchanged.
allocator::Environment torchrun_environment(const RankInfo& rank, const std::string& master_addr,
                                            int master_port);

}  // namespace ipex::launcher
