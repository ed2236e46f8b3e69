// Starts every instance of a plan and watches them until they end.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "launch_plan.h"

namespace ipex::launcher {

// Told about every instance's life (the benchmark report collector uses it).
class InstanceObserver {
  public:
    virtual ~InstanceObserver() = default;
    // A descriptor the instance gets as its fd 3 (kept open across exec), or -1.
    virtual int fd_for(std::size_t /*instance*/) { return -1; }
    virtual void started(std::size_t /*instance*/) {}
    virtual void ended(std::size_t /*instance*/, int /*wait_status*/) {}
};

struct SupervisorOptions {
    std::string log_dir;                    // "" = no log files; created if missing
    std::string log_prefix = "run";         // file names start with this
    bool keep_going = false;                // a failing instance does not stop the others
    std::chrono::milliseconds grace{5000};  // SIGTERM → SIGKILL delay when stopping instances
    InstanceObserver* observer = nullptr;   // positions are those of plan.instances
    // Called once everything has ended and its output is out, when an instance failed on
    // its own (not because the launcher was signalled), with the launcher's exit code.
    std::function<void(int)> on_failure;
    // Sees every line the instances write to stderr.
    std::function<void(const std::string&)> stderr_observer;
    // When >= 0, the run waits for a verdict on this descriptor (see start_gate.h) while the
    // instances start: their output, and the launcher's lines about them, are held back until
    // one line arrives. "go" lets everything through. Any other line, or the end of the
    // stream, refuses the run: the instances are stopped, their output dropped, the line is
    // logged as the run's one error, and run_plan returns 1.
    int start_verdict_fd = -1;
    std::function<void()> on_go;  // called when the verdict lets the run through
};

// Runs the plan and returns the launcher's exit code: 0 when every instance succeeded,
// otherwise the first failing instance's code (128 + signal number if it was killed).
int run_plan(const LaunchPlan& plan, const SupervisorOptions& options);

}  // namespace ipex::launcher
