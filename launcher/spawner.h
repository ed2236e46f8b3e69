// Starting one instance: clone, bind (CPUs, memory) in the child, exec the argv vector.
// No shell is involved anywhere, so arguments reach the program exactly as planned.
#pragma once

#include <sys/types.h>

#include <string>

#include "launch_plan.h"

namespace ipex::launcher {

class SignalWatch;

// How memory is bound for BindMethod::kDirect, decided once per launch.
enum class MemoryPolicy {
    kNone,       // nothing to bind, or the kernel accepts no policy at all
    kBind,       // MPOL_BIND to the instance's nodes
    kPreferred,  // MPOL_PREFERRED to the first of the instance's nodes (bind was refused)
};

struct MemoryPolicyChoice {
    MemoryPolicy policy = MemoryPolicy::kNone;
    std::string warning;  // "" unless the plan asked for more than the machine allows
};

// Tries the plan's node sets on the calling thread, then restores its policy (containers often
// refuse set_mempolicy with EPERM; WSL has no NUMA at all) so that the launch warns once, not once
// per instance.
MemoryPolicyChoice choose_memory_policy(const LaunchPlan& plan);

// The descriptor number a program finds its benchmark report socket at (IPEXRUN_REPORT_FD).
constexpr int kReportFd = 3;

struct SpawnSettings {
    BindMethod bind = BindMethod::kDirect;
    MemoryPolicy memory = MemoryPolicy::kNone;
    bool stdin_null = false;               // give the instance /dev/null as stdin
    const SignalWatch* signals = nullptr;  // dispositions to restore in the child
    int report_fd = -1;                    // becomes the program's kReportFd
    std::string run_id;                    // IPEXRUN_RUN_ID's value; "" leaves it alone
};

struct SpawnedInstance {
    pid_t pid = -1;      // also the process group id: every instance leads its own group
    int stdout_fd = -1;  // read ends of the instance's stdout and stderr pipes (O_CLOEXEC)
    int stderr_fd = -1;
    std::string error;  // why nothing was started (pid == -1), one line
};

// Starts the instance. In the child, before exec: own process group, death signal tied to
// the launcher, CPU affinity and memory policy (kDirect only), the plan's environment on
// top of the launcher's. If exec fails, the child writes
// "ipexrun: cannot execute 'prog': <reason>" to its stderr and exits with 127 (126 when the
// file exists but cannot be executed).
SpawnedInstance spawn_instance(const InstanceLaunch& instance, const SpawnSettings& settings);

}  // namespace ipex::launcher
