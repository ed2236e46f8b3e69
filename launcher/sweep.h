// ipexrun --sweep: runs the program under each layout for a fixed time, ranks the layouts and
// prints the command of the best one.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ipex/affinity/topology.h"
#include "launch_plan.h"
#include "options.h"
#include "supervisor.h"

namespace ipex::launcher {

// Builds the plan of a set of options (throws std::invalid_argument when it cannot).
using PlanFor = std::function<LaunchPlan(const LaunchOptions&)>;

// Each layout measures for --benchmark-duration (or --benchmark-iterations), 10 s if neither
// is given. Returns 0 when a best layout was found, 1 otherwise.
int run_sweep(const LaunchOptions& options, const SupervisorOptions& supervise,
              const affinity::Topology& topology, const PlanFor& plan_for,
              const std::vector<std::string>& argv);

}  // namespace ipex::launcher
