// The --dry-run document: the LaunchPlan as one JSON object.
#pragma once

#include <string>

#include "launch_plan.h"

namespace ipex::launcher {

std::string plan_to_json(const LaunchPlan& plan);

}  // namespace ipex::launcher
