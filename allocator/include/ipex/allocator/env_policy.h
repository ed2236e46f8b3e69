// The environment each instance gets: preloaded allocator and OpenMP runtime, their tuning
// variables and the OpenMP team size. Pure: the caller supplies what exists on disk.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "ipex/allocator/library_finder.h"

namespace ipex::allocator {

enum class MemoryAllocator { kAuto, kDefault, kTcmalloc, kJemalloc };
enum class OmpRuntime { kAuto, kDefault, kIntel };

struct EnvRequest {
    MemoryAllocator allocator = MemoryAllocator::kAuto;
    OmpRuntime omp = OmpRuntime::kAuto;
    bool benchmark = false;             // jemalloc tuned for steady-state benchmarking
    bool affinity_through_env = false;  // no CPU binding by the launcher: OpenMP must pin
    std::string runtime_library;        // libipex_runtime.so to preload; "" for none
};

struct AvailableLibraries {
    std::optional<std::string> tcmalloc;
    std::optional<std::string> jemalloc;
    std::optional<std::string> iomp;  // libiomp5 (Intel) or LLVM's compatible libomp
};

using Environment = std::map<std::string, std::string>;

struct EnvPlan {
    std::vector<Environment> instances;  // only the variables set or changed, per instance
    std::string allocator;               // "tcmalloc", "jemalloc" or "default"
    std::string omp_runtime;             // "intel" or "gnu"
    std::vector<std::string> warnings;   // each at most once
};

// A choice the machine cannot honour (e.g. --memory-allocator jemalloc without jemalloc).
struct EnvError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// Whether the dynamic loader finds a library given by bare name (no '/') for the program the
// instances run; nullopt when it cannot tell.
using LoaderFinds = std::function<std::optional<bool>(const std::string& name)>;

// `instance_cpus` holds each instance's CPUs (sorted OS indexes). Variables already present
// in `user_env` win over the launcher's values, with one warning each; LD_PRELOAD is merged.
// A user's LD_PRELOAD entry the loader would not load (a path that is no file, a bare name
// `loader_finds` says is not found) is dropped with a warning: the loader would print an
// error in every process and ignore it.
EnvPlan plan_environment(const EnvRequest& request, const AvailableLibraries& libraries,
                         const Environment& user_env, const FileExists& exists,
                         const std::vector<std::vector<int>>& instance_cpus,
                         const LoaderFinds& loader_finds = nullptr);

}  // namespace ipex::allocator
