// The instance planner: a pure function from a topology and the user's request to the CPUs
// and memory nodes of each instance. It never touches the machine.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "ipex/affinity/topology.h"

namespace ipex::affinity {

enum class Strategy { kScatter, kClose };

struct PlanRequest {
    int ninstances = 0;                    // 0 = derive from the other options
    std::vector<int> ncores_per_instance;  // {} or {0} = even split, {-1} = greedy, {N}, or one
                                           // size per instance ({5, 5, 6})
    std::vector<int> nodes_list;           // NUMA node OS indexes to use; {} = all
    std::vector<int> cores_list;           // CPU OS indexes to use; {} = all
    bool use_logical_cores = false;
    bool use_e_cores = false;
    bool bind_numa_node = false;  // each instance inside one NUMA node
    Strategy strategy = Strategy::kScatter;
    bool latency_mode = false;      // 4 cores an instance, as many instances as fit
    bool throughput_mode = false;   // one instance per NUMA node
    std::vector<int> instance_idx;  // run only these instances; {} or {-1} = all
};

struct InstanceCpus {
    int index = 0;
    std::vector<int> cpus;   // sorted OS indexes, never empty
    std::vector<int> nodes;  // sorted NUMA nodes to bind memory to (local and allowed)
};

struct Plan {
    std::vector<InstanceCpus> instances;
    std::vector<std::string> warnings;
};

// A request that cannot be met on this topology; the message says what is available.
struct PlanError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

Plan plan_instances(const Topology& topology, const PlanRequest& request);

}  // namespace ipex::affinity
