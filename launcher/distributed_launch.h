// ipexrun --nnodes N: checks what can be checked before anything starts (the MPI is there,
// every host answers, the master port is free), then runs the one MPI command under the
// supervisor, which passes Ctrl-C/SIGTERM on and returns the job's exit code.
#pragma once

#include "ipex/affinity/topology.h"
#include "options.h"
#include "plan_builder.h"

namespace ipex::launcher {

// The launcher's exit code; errors before the start are one line on stderr.
int run_distributed(const LaunchOptions& options, const affinity::Topology& topology,
                    const allocator::Environment& env);

}  // namespace ipex::launcher
