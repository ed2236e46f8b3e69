// The files of one run in a --log-dir: one for the launcher, one per instance. A run never
// reuses a name: the files are created with O_EXCL under a stem that is unique per run.
#pragma once

#include <string>
#include <vector>

#include "launch_plan.h"

namespace ipex::launcher {

struct RunLogFiles {
    std::string stem;           // "<dir>/<prefix>_<YYYYmmddHHMMSS>" plus "-2", "-3", ... if taken
    std::string launcher_path;  // "<stem>_launcher.log"
    std::vector<std::string> instance_paths;  // "<stem>_instance_<i>_cpus_<0-3_8>.log"
    std::vector<int> instance_fds;            // open for writing (O_APPEND | O_CLOEXEC)
    std::vector<std::string> created_dirs;    // log folders this run made, outermost first

    // A start that is refused leaves nothing behind: closes and removes the files, then the
    // folders this run created (those still empty).
    void discard();

    RunLogFiles() = default;
    RunLogFiles(RunLogFiles&& other) noexcept;
    RunLogFiles& operator=(RunLogFiles&& other) noexcept;
    RunLogFiles(const RunLogFiles&) = delete;
    RunLogFiles& operator=(const RunLogFiles&) = delete;
    ~RunLogFiles();  // closes the instance files
};

// Creates `dir` (and its parents) if needed, then a fresh set of files for the plan's
// instances; the launcher file is created empty and left closed for the logger to open.
// Existing files in the directory are never touched. Throws std::runtime_error with a
// one-line message naming the path and the reason, after removing whatever it created
// (a full disk or inode table part-way).
RunLogFiles create_run_log_files(const std::string& dir, const std::string& prefix,
                                 const LaunchPlan& plan);

// File name part for an instance: "instance_<index>_cpus_<ranges with ',' as '_'>", or for
// a labelled one (a rank) "rank_3_n2_cpus_<...>".
std::string instance_log_name(const InstanceLaunch& instance);

}  // namespace ipex::launcher
