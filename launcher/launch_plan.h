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
    std::vector<int> cpus;          // sorted OS indexes; never empty
    std::vector<int> memory_nodes;  // sorted NUMA OS indexes to bind memory to; may be empty
    int omp_num_threads = 0;
    std::map<std::string, std::string> env;  // only the variables ipexrun sets or changes
    std::vector<std::string> argv;           // argv[0] is an absolute path or a PATH name
};

struct LaunchPlan {
    std::vector<InstanceLaunch> instances;
    BindMethod bind = BindMethod::kDirect;
    std::string python;         // interpreter used for Python programs ("" with --no-python)
    std::string python_source;  // why that interpreter: "--python", "$IPEXRUN_PYTHON", "build"
    std::string allocator;      // "tcmalloc", "jemalloc" or "default"
    std::string omp_runtime;    // "intel" or "gnu"
    std::vector<std::string> warnings;  // shown once, before launching
};

}  // namespace ipex::launcher
