// Command line (and --config file) → one typed LaunchOptions. No effects beyond parsing.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipex/affinity/planner.h"
#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

enum class TaskManager { kAuto, kNone, kNumactl, kTaskset };
enum class RuntimePreload { kAuto, kOn, kOff };

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
    bool disable_ipex_graph_mode = false;
    double grace_seconds = 5.0;
    std::vector<std::string> notes;  // deprecation notes to print as warnings
};

// What parsing produced: options to run with, or an exit code (help/version printed, or a
// usage error already reported on stderr as one line).
struct ParseResult {
    std::optional<LaunchOptions> options;
    int exit_code = 0;
};

ParseResult parse_options(int argc, const char* const* argv);

}  // namespace ipex::launcher
