// ipexrun --nnodes N: checks what can be checked before anything starts (the MPI is there,
// every host answers, the master port is free), then runs the one MPI command under the
// supervisor, which passes Ctrl-C/SIGTERM on and returns the job's exit code.
#pragma once

#include <functional>
#include "ipex/affinity/topology.h"
#include "options.h"

#include "plan_builder.h"
#include "supervisor.h"

namespace ipex::launcher {

// Runs the job's one-instance plan (the MPI command) for `ranks` ranks; run_plan by default.
using JobRunner =
    std::function<int(const LaunchPlan& job, const SupervisorOptions& supervise, int ranks)>;

// The launcher's exit code; errors before the start are one line on stderr.
int run_distributed(const LaunchOptions& options, const affinity::Topology& topology,
                    const allocator::Environment& env, const JobRunner& runner = {});

}  // namespace ipex::launcher
