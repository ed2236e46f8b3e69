// One rank's share of a node: when several processes run on one node (ranks of an MPI job,
// copies started by torchrun or srun), each plans only its own disjoint part of the CPUs.
// Pure, like the planner it builds on.
#pragma once

#include <vector>

#include "ipex/affinity/planner.h"
#include "ipex/affinity/topology.h"

namespace ipex::affinity {

// The CPUs of rank `local_rank` out of `local_size` ranks on this node, as a plan with one
// instance (index = local_rank). Without a size in `base`, the ranks split all candidate
// CPUs (those --cores-list/--nodes-list select) between them, whole cores, every CPU used,
// each rank inside one NUMA node when there are at least as many ranks as nodes. With
// `ncores_per_instance` N, every rank gets N cores. More ranks than candidate CPUs share
// CPUs round-robin, with a warning. Throws PlanError for impossible requests.
Plan plan_rank_share(const Topology& topology, const PlanRequest& base, int local_rank,
                     int local_size);

// A rank's CPUs divided between oneCCL's progress workers and OpenMP.
struct CclSplit {
    std::vector<int> omp_cpus;  // where OpenMP threads go
    std::vector<int> ccl_cpus;  // CCL_WORKER_AFFINITY, one CPU a worker
    std::vector<int> all_cpus;  // the process's affinity: both of the above
};

// Without `logical_for_ccl`, the first `workers` cores of the share go to oneCCL and OpenMP
// gets the rest; with it, each worker takes an SMT sibling of the share's first cores and
// OpenMP keeps every core of the share. Siblings come from `within` when it is not empty
// (the user's --cores-list). Throws PlanError when the share cannot give that.
CclSplit split_for_ccl(const Topology& topology, const std::vector<int>& share, int workers,
                       bool logical_for_ccl, const std::vector<int>& within = {});

}  // namespace ipex::affinity
