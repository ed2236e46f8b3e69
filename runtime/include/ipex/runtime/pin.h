// pin: a scope in which the calling thread's OpenMP team runs one thread per CPU of a pool.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "ipex/runtime/cpu_pool.h"

namespace ipex::runtime {

// On entry: sets the calling thread's team size to pool.size() and pins team thread t (the
// caller is thread 0) to pool.cpus()[t]. On exit: the previous team size and the previous
// affinity of every thread it touched come back exactly. Scopes nest; a scope must end on the
// thread that opened it. Works with libgomp and with Intel/LLVM OpenMP.
class pin {
  public:
    explicit pin(const CPUPool& pool);
    ~pin();
    pin(const pin&) = delete;
    pin& operator=(const pin&) = delete;

  private:
    struct Saved;
    std::unique_ptr<Saved> saved_;
};

// The pool of the innermost pin scope open on the calling thread (TaskExecutor workers count
// as being inside one), or nothing.
std::optional<CPUPool> current_cpu_pool();

// Re-pins team threads that the OpenMP runtime replaced since the innermost pin scope of the
// calling thread began (libgomp ends surplus threads when a team shrinks). Cheap when nothing
// changed: one parallel region without system calls. No-op outside a pin scope.
void refresh_pin();

// OS thread ids (gettid) of the calling thread's OpenMP team at its current size, thread 0
// (the caller) first: for checking affinities through /proc/self/task/<tid>/status.
std::vector<int> team_thread_ids();

// True when any OpenMP runtime is linked (always, for this library).
bool is_runtime_ext_enabled();
const char* openmp_runtime_name();

}  // namespace ipex::runtime
