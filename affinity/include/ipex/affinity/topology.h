// The machine as the planner sees it: every processing unit (PU, a hardware thread) with
// where it sits, plus the NUMA nodes. Loaded with hwloc from this machine or an XML export.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ipex::affinity {

struct Pu {
    int os = 0;           // OS index: the number the kernel, taskset and numactl use
    int core = 0;         // unique id of the core (hwloc logical index; topology order)
    int package = 0;      // socket, hwloc logical index
    int numa = -1;        // OS index of the NUMA node with this PU's local memory (which may
                          // be a node outside the topology: not ours); -1 if none known
    int smt_rank = 0;     // 0 for the first hardware thread of its core, 1 for the next, ...
    int kind_rank = 0;    // 0 for the fastest core kind; higher for efficiency (E) cores
    bool allowed = true;  // in the cgroup cpuset and, on this machine, the process affinity
    bool efficiency_core() const { return kind_rank > 0; }
};

struct NumaNode {
    int os = 0;
    std::vector<int> cpus;     // OS indexes of the PUs whose local memory this is
    std::uint64_t memory = 0;  // bytes
    bool allowed = true;       // memory may be bound here (cgroup mems)
};

struct Topology {
    std::vector<Pu> pus;          // in hwloc topology order (cores of a package together)
    std::vector<NumaNode> nodes;  // sorted by OS index, CPU-less (HBM, CXL) nodes included
    std::vector<int> offline;     // CPUs the kernel knows of but that are not online
    std::string source;           // "this machine", the XML path, or the HWLOC_* variable
    bool this_machine = true;     // false: a description of another machine (plan only)
    // This machine's hwloc XML, when asked for, for load_this_machine in other processes on
    // it (ranks started next to the launcher skip hwloc's walk of sysfs); else "", and "" when
    // hwloc could not export it.
    std::string machine_xml;

    const Pu* find_pu(int os) const;
    const NumaNode* find_node(int os) const;
    std::vector<int> allowed_cpus() const;
};

struct TopologyError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Loads the topology of this machine (xml_path empty) or of an hwloc XML export. For this
// machine, `allowed` also honours the process's own affinity mask (taskset, cgroups).
// When xml_path is empty, HWLOC_SYNTHETIC or else HWLOC_XMLFILE in the environment describe
// the machine instead (an error when hwloc cannot use them; HWLOC_THISSYSTEM=1 says the
// description is this machine's). With `export_machine_xml`, a topology of this machine also
// keeps the same load's XML export in machine_xml.
Topology load_topology(const std::string& xml_path, bool export_machine_xml = false);

// This machine, from an XML document exported by load_topology("", true) on it since the last
// boot: the hardware comes from the file, what this process may use (cgroup cpuset, affinity
// mask) is read from the system as load_topology("") does.
Topology load_this_machine(const std::string& xml_path);

}  // namespace ipex::affinity
