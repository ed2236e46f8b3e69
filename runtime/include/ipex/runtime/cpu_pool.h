// CPUPool: an ordered set of logical CPUs this process may run on. A plain value: copy it,
// compare it, slice it; nothing is pinned until a pin scope or a TaskExecutor uses it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace ipex::runtime {

class CPUPool {
  public:
    // The given CPUs, in the given order, minus those the process may not use (affinity mask,
    // cgroup cpuset). Throws std::invalid_argument naming the allowed CPUs when none is left,
    // and on negative or repeated ids.
    explicit CPUPool(const std::vector<int>& cpus);

    // The allowed CPUs of NUMA node `node` as hwloc numbers it (OS index).
    static CPUPool numa_node(int node);
    // Every CPU the process may use.
    static CPUPool all();

    const std::vector<int>& cpus() const { return cpus_; }
    std::size_t size() const { return cpus_.size(); }

    // `parts` consecutive slices; the first size() % parts slices get one CPU more.
    // Throws std::invalid_argument unless 1 <= parts <= size().
    std::vector<CPUPool> split(int parts) const;

    std::string to_string() const;  // "0-3,8"

    friend bool operator==(const CPUPool& a, const CPUPool& b) { return a.cpus_ == b.cpus_; }
    friend bool operator!=(const CPUPool& a, const CPUPool& b) { return !(a == b); }

  private:
    struct Unchecked {};
    CPUPool(Unchecked, std::vector<int> cpus) : cpus_(std::move(cpus)) {}
    std::vector<int> cpus_;
};

// CPUs the process may use, ascending: the affinity mask the process had when the library
// was loaded (before any pin narrowed a thread) intersected with the cgroup cpuset.
const std::vector<int>& allowed_cpus();

// "0-3,8,10-11"
std::string format_cpu_list(const std::vector<int>& cpus);

}  // namespace ipex::runtime
