// Starts every instance of a plan and watches them until they end.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "launch_plan.h"

namespace ipex::launcher {

struct SupervisorOptions {
    std::string log_dir;                    // "" = no log files; created if missing
    std::string log_prefix = "run";         // file names start with this
    bool keep_going = false;                // a failing instance does not stop the others
    std::chrono::milliseconds grace{5000};  // SIGTERM → SIGKILL delay when stopping instances
    // Called once everything has ended and its output is out, when an instance failed on
    // its own (not because the launcher was signalled), with the launcher's exit code.
    std::function<void(int)> on_failure;
    // Sees every line the instances write to stderr.
    std::function<void(const std::string&)> stderr_observer;
};

// Runs the plan and returns the launcher's exit code: 0 when every instance succeeded,
// otherwise the first failing instance's code (128 + signal number if it was killed).
int run_plan(const LaunchPlan& plan, const SupervisorOptions& options);

}  // namespace ipex::launcher
