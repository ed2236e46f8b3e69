// Helpers of the runtime tests: what the kernel says about thread affinities.
#pragma once

#include <string>
#include <vector>

namespace ipex::runtime::testing {

// Cpus_allowed_list of /proc/self/task/<tid>/status, e.g. "0-1".
std::string allowed_list_of(int tid);

// Cpus_allowed_list of every thread of the calling thread's current OpenMP team, thread 0 first.
std::vector<std::string> team_allowed_lists();

// Gives the calling thread a team of n threads. torch sets a thread's team size on its first
// use (a pin triggers that), so a throwaway pin comes first.
void set_team_size(int n);

}  // namespace ipex::runtime::testing
