#include "ipex/runtime/cpu_pool.h"

#include <hwloc.h>
#include <omp.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include "cpu_mask.h"

namespace ipex::runtime {
namespace {

// "0-3,8" -> {0,1,2,3,8}; an unreadable or empty list gives an empty set.
std::vector<int> parse_cpu_list(const std::string& text) {
    std::vector<int> out;
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        if (item.empty() || item == "\n") continue;
        auto dash = item.find('-');
        try {
            int lo = std::stoi(item.substr(0, dash));
            int hi = dash == std::string::npos ? lo : std::stoi(item.substr(dash + 1));
            for (int c = lo; c <= hi; ++c) out.push_back(c);
        } catch (const std::exception&) {
            return {};
        }
    }
    return out;
}

std::vector<int> cgroup_cpuset() {
    // cgroup v2; the affinity mask already reflects it on current kernels, this only guards
    // against a mask that was widened behind the cgroup's back.
    for (const char* path : {"/sys/fs/cgroup/cpuset.cpus.effective"}) {
        std::ifstream f(path);
        std::string line;
        if (f && std::getline(f, line)) return parse_cpu_list(line);
    }
    return {};
}

// CPUs of the OpenMP places. With OMP_PROC_BIND/OMP_PLACES (or KMP_AFFINITY) the OpenMP runtime
// binds the main thread to its first place as soon as it starts, before we can look; the places
// still cover the whole mask the process was started with.
std::vector<int> openmp_place_cpus() {
    std::vector<int> out;
    const int places = omp_get_num_places();
    for (int p = 0; p < places; ++p) {
        std::vector<int> ids(std::max(omp_get_place_num_procs(p), 0));
        if (!ids.empty()) omp_get_place_proc_ids(p, ids.data());
        out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
}

std::vector<int> compute_allowed() {
    // The main thread's mask (its tid is the pid): the process's, whichever thread loads us;
    // widened by the OpenMP places (see above).
    std::vector<int> cpus = detail::CpuMask::of_thread(getpid()).cpus();
    for (int c : openmp_place_cpus()) cpus.push_back(c);
    std::sort(cpus.begin(), cpus.end());
    cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
    std::vector<int> cg = cgroup_cpuset();
    if (!cg.empty()) {
        std::vector<int> both;
        std::set_intersection(cpus.begin(), cpus.end(), cg.begin(), cg.end(),
                              std::back_inserter(both));
        if (!both.empty()) cpus = std::move(both);
    }
    return cpus;
}

}  // namespace

const std::vector<int>& allowed_cpus() {
    static const std::vector<int> allowed = compute_allowed();
    return allowed;
}

namespace {
// Taken when the library is loaded, before any pin scope narrows the main thread's mask
// (the function-local static also serves static initialisers that run before this one).
const bool g_allowed_taken_at_load = !allowed_cpus().empty();
}  // namespace

std::string format_cpu_list(const std::vector<int>& cpus) {
    std::string out;
    for (std::size_t i = 0; i < cpus.size();) {
        std::size_t j = i;
        while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
        if (!out.empty()) out += ',';
        out += std::to_string(cpus[i]);
        if (j > i) out += '-' + std::to_string(cpus[j]);
        i = j + 1;
    }
    return out;
}

CPUPool::CPUPool(const std::vector<int>& cpus) {
    const auto& allowed = allowed_cpus();
    std::set<int> seen;
    for (int c : cpus) {
        if (c < 0)
            throw std::invalid_argument("CPUPool: CPU id " + std::to_string(c) + " is negative");
        if (!seen.insert(c).second)
            throw std::invalid_argument("CPUPool: CPU " + std::to_string(c) + " is listed twice");
        if (std::binary_search(allowed.begin(), allowed.end(), c)) cpus_.push_back(c);
    }
    if (cpus_.empty()) {
        std::string asked;
        for (int c : cpus) asked += (asked.empty() ? "" : ",") + std::to_string(c);
        throw std::invalid_argument(
            "CPUPool: none of the CPUs [" + asked +
            "] can be used by this process; allowed CPUs: " + format_cpu_list(allowed));
    }
}

CPUPool CPUPool::all() {
    return CPUPool(Unchecked{}, allowed_cpus());
}

CPUPool CPUPool::numa_node(int node) {
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        throw std::runtime_error("CPUPool: hwloc_topology_init failed");
    std::unique_ptr<hwloc_topology, void (*)(hwloc_topology_t)> guard(topo, hwloc_topology_destroy);
    if (hwloc_topology_load(topo) != 0)
        throw std::runtime_error("CPUPool: hwloc_topology_load failed");
    std::vector<int> cpus;
    std::string nodes;
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    for (int i = 0; i < n; ++i) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, i);
        nodes += (nodes.empty() ? "" : ",") + std::to_string(obj->os_index);
        if (static_cast<int>(obj->os_index) != node) continue;
        int cpu;
        hwloc_bitmap_foreach_begin(cpu, obj->cpuset) cpus.push_back(cpu);
        hwloc_bitmap_foreach_end();
    }
    if (cpus.empty())
        throw std::invalid_argument("CPUPool: NUMA node " + std::to_string(node) +
                                    " does not exist or has no CPUs; nodes: " + nodes);
    return CPUPool(cpus);
}

std::vector<CPUPool> CPUPool::split(int parts) const {
    if (parts < 1 || static_cast<std::size_t>(parts) > cpus_.size())
        throw std::invalid_argument("CPUPool: cannot split " + std::to_string(cpus_.size()) +
                                    " CPUs into " + std::to_string(parts) + " parts");
    std::vector<CPUPool> out;
    std::size_t base = cpus_.size() / parts, extra = cpus_.size() % parts, at = 0;
    for (int p = 0; p < parts; ++p) {
        std::size_t len = base + (static_cast<std::size_t>(p) < extra ? 1 : 0);
        out.push_back(CPUPool(Unchecked{}, {cpus_.begin() + at, cpus_.begin() + at + len}));
        at += len;
    }
    return out;
}

std::string CPUPool::to_string() const {
    return format_cpu_list(cpus_);
}

}  // namespace ipex::runtime
