// Affinity of the calling thread's OpenMP team. Works with any OpenMP runtime: each team
// thread sets its own mask from inside a parallel region (sched_setaffinity), through the
// kmp_* API instead when the runtime has it (Intel/LLVM OpenMP keep their own view of it).
//
// libgomp ends the surplus threads of its pool when a team shrinks and later creates new ones
// that inherit the master's mask; team_repin() is the cheap check that re-pins such threads.
#pragma once

#include <vector>

#include "cpu_mask.h"

namespace ipex::runtime::detail {

// Masks of threads 0..size-1 of a team of `size` threads forked by the calling thread.
std::vector<CpuMask> team_affinity(int size);

// One region of masks.size() threads; thread t takes masks[t]. Throws std::runtime_error when
// the runtime gives fewer threads or a mask cannot be applied.
void set_team_affinity(const std::vector<CpuMask>& masks);

// Team of cpus.size() threads, thread t pinned to cpus[t] alone.
void pin_team(const std::vector<int>& cpus);

// Like pin_team, but a thread already pinned to its CPU by us skips the system call.
void team_repin(const std::vector<int>& cpus);

// Name of the OpenMP runtime in use ("libgomp", "libiomp5/libomp").
const char* openmp_runtime_name();

}  // namespace ipex::runtime::detail
