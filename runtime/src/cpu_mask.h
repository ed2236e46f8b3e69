// A dynamically sized cpu_set_t (CPU_ALLOC), so that machines with more than 1024 CPUs work.
#pragma once

#include <pthread.h>
#include <sched.h>
#include <sys/types.h>

#include <memory>
#include <vector>

namespace ipex::runtime::detail {

class CpuMask {
  public:
    CpuMask();
    static CpuMask of_cpus(const std::vector<int>& cpus);
    static CpuMask of_thread(pid_t tid);  // 0 = calling thread
    static CpuMask of_pthread(pthread_t t);

    std::vector<int> cpus() const;
    // Applies the mask to the calling thread; returns an errno value (0 on success).
    int apply_to_calling_thread() const;

    bool operator==(const CpuMask& o) const;

  private:
    int ncpus_;
    std::shared_ptr<cpu_set_t> set_;  // immutable after construction, so sharing is safe
    std::size_t bytes() const { return CPU_ALLOC_SIZE(ncpus_); }
};

}  // namespace ipex::runtime::detail
