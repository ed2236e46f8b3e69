// What ipexrun will do: one entry per instance, fully resolved. `--dry-run` prints exactly
// this object, and the spawner executes exactly this object.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace ipex::launcher {

// How CPU and memory binding is applied to an instance.
enum class BindMethod {
    kDirect,   // sched_setaffinity + libnuma in the child, before exec (default)
    kNumactl,  // argv is prefixed with `numactl -C <cpus> [-m <nodes>]`
    kTaskset,  // argv is prefixed with `taskset -c <cpus>`
    kNone,     // no binding at all (the environment may still carry OpenMP affinity)
};

struct InstanceLaunch {
    int index = 0;
    std::string label;        // how output and log names call it; "" = by its index
    bool raw_output = false;  // pass output on unprefixed (an MPI launcher's own ranks prefix)
    std::vector<int> cpus;    // sorted OS indexes; never empty
    std::vector<int> memory_nodes;  // sorted NUMA OS indexes to bind memory to; may be empty
    int omp_num_threads = 0;
    std::map<std::string, std::string> env;  // only the variables ipexrun sets or changes
    std::vector<std::string> argv;           // argv[0] is an absolute path or a PATH name
};

// "instance 2", or the label ("rank 3 n2").
inline std::string instance_name(const InstanceLaunch& instance) {
    return instance.label.empty() ? "instance " + std::to_string(instance.index) : instance.label;
}

struct LaunchPlan {
    std::vector<InstanceLaunch> instances;
    BindMethod bind = BindMethod::kDirect;
    std::string python;         // interpreter used for Python programs ("" with --no-python)
    std::string python_source;  // why that interpreter: "--python", "$IPEXRUN_PYTHON", "build"
    std::string allocator;      // "tcmalloc", "jemalloc" or "default"
    std::string omp_runtime;    // "intel" or "gnu"
    std::vector<std::string> warnings;  // shown once, before launching
    bool summary = true;                // print the table of instances at the end
};

}  // namespace ipex::launcher
