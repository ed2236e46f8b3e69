// Command line (and --config file) → one typed LaunchOptions. No effects beyond parsing.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "benchmark_options.h"
#include "ipex/affinity/planner.h"
#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

enum class TaskManager { kAuto, kNone, kNumactl, kTaskset };
enum class RuntimePreload { kAuto, kOn, kOff };
enum class MpiChoice { kAuto, kHydra, kOpenMpi, kSlurm };

// Launching ranks across nodes through an MPI launcher or srun (active when nnodes > 0).
struct DistributedOptions {
    int nnodes = 0;
    int nprocs_per_node = 0;  // 0: one per NUMA node, or per --nodes-list entry
    std::string hostfile;     // one host a line; "" = this machine only
    MpiChoice mpi = MpiChoice::kAuto;
    std::string master_addr;  // "" = $MASTER_ADDR, the hostfile's first host, or 127.0.0.1
    int master_port = 0;      // 0 = $MASTER_PORT or 29500
    int ccl_worker_count = 0;
    bool logical_cores_for_ccl = false;
    std::string extra_mpi_params;  // split like a shell would, but never run through one
    std::string mpi_agent;         // remote shell for the MPI and the reachability probe
    bool rank_wrapper = false;     // internal: this process is one rank under the MPI launcher
};

struct LaunchOptions {
    affinity::PlanRequest plan;
    allocator::EnvRequest env;  // runtime_library is filled in later, from the install
    TaskManager task_manager = TaskManager::kAuto;
    RuntimePreload runtime_preload = RuntimePreload::kAuto;
    std::string topology_file;
    // Id lists as given; the plan builder parses them against the topology, whose size
    // bounds them. Empty: not given (for instance_idx, "-1" also means all).
    std::string cores_list, nodes_list, instance_idx;
    bool dry_run = false;
    bool module = false;     // -m: run the program as `python -m program`
    bool no_python = false;  // run the program directly
    std::string python;      // --python
    std::string program;
    std::vector<std::string> program_args;
    std::string log_dir;
    std::string log_prefix = "run";
    bool keep_going = false;
    // Codeless mode: the program runs under ipex.cpu.auto_ipex, which optimises every
    // module on its first call.
    bool auto_ipex = false;
    std::string dtype = "float32";
    bool auto_ipex_verbose = false;
    bool ipex_graph_mode = false;          // answer from checked traced graphs
    bool disable_ipex_graph_mode = false;  // eager copies (the default; kept for old scripts)
    double grace_seconds = 5.0;
    BenchmarkOptions benchmark;
    std::vector<std::string> notes;  // deprecation notes to print as warnings
    DistributedOptions dist;
    // The command-line arguments before the program, as given: a rank re-runs ipexrun with them.
    std::vector<std::string> option_args;
};

// What parsing produced: options to run with, or an exit code (help/version printed, or a
// usage error already reported on stderr as one line).
struct ParseResult {
    std::optional<LaunchOptions> options;
    int exit_code = 0;
};

ParseResult parse_options(int argc, const char* const* argv);

// --instance-idx names some instances (not empty, not "-1" for all).
bool runs_a_subset(const LaunchOptions& options);

}  // namespace ipex::launcher
