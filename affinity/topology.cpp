#include "ipex/affinity/topology.h"

#include <hwloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>

#include "ipex/affinity/user_text.h"

namespace ipex::affinity {
namespace {

using TopologyPtr = std::unique_ptr<hwloc_topology, decltype(&hwloc_topology_destroy)>;
using Bitmap = std::unique_ptr<hwloc_bitmap_s, decltype(&hwloc_bitmap_free)>;

Bitmap make_bitmap() {
    return Bitmap(hwloc_bitmap_alloc(), &hwloc_bitmap_free);
}

std::vector<int> bitmap_ids(hwloc_const_bitmap_t set) {
    std::vector<int> ids;
    if (!set || hwloc_bitmap_weight(set) < 0) return ids;  // infinite sets never describe CPUs
    unsigned id;
    hwloc_bitmap_foreach_begin(id, set) ids.push_back(static_cast<int>(id));
    hwloc_bitmap_foreach_end();
    return ids;
}

// hwloc dlopens its plugins (PCI, OpenCL, GL, libxml2) on the first topology_init; they pull
// in X11 and OpenCL loaders and cost ~6 ms per launch, for I/O objects we never look at.
// Unless the user points hwloc at plugins, give it an empty plugin path for that one call.
int init_without_plugins(hwloc_topology_t* raw) {
    if (std::getenv("HWLOC_PLUGINS_PATH")) return hwloc_topology_init(raw);
    setenv("HWLOC_PLUGINS_PATH", "", 1);
    const int rc = hwloc_topology_init(raw);
    unsetenv("HWLOC_PLUGINS_PATH");
    return rc;
}

// How the XML is read: another machine's export, or this machine's own (a cache).
enum class XmlOf { kAnotherMachine, kThisMachine };

// Where hwloc is told to take the topology from instead of this machine. hwloc reads these
// variables itself, but silently falls back to this machine when one cannot be used: a typo
// in a path would plan for the wrong machine without a word.
struct Description {
    enum class Kind { kThisMachine, kXml, kSynthetic } kind = Kind::kThisMachine;
    std::string text;  // the path or the synthetic description
    std::string name;  // as messages name it
};

Description description_from(const std::string& xml_path) {
    if (!xml_path.empty()) return {Description::Kind::kXml, xml_path, quote_text(xml_path)};
    // hwloc's own order: a synthetic description wins over an XML file.
    if (const char* synthetic = std::getenv("HWLOC_SYNTHETIC"); synthetic && *synthetic)
        return {Description::Kind::kSynthetic, synthetic,
                "HWLOC_SYNTHETIC=" + quote_text(synthetic)};
    if (const char* xml = std::getenv("HWLOC_XMLFILE"); xml && *xml)
        return {Description::Kind::kXml, xml, "HWLOC_XMLFILE=" + quote_text(xml)};
    return {};
}

// hwloc reads whatever the path gives until it ends: /dev/zero or a FIFO never would. An
// export is a regular file of at most a few MiB (~2 MiB for 1024 CPUs with their caches).
void check_xml_file(const Description& from) {
    constexpr off_t kMaxBytes = off_t{64} << 20;
    struct stat info {};
    const auto refused = [&from](const std::string& why) {
        return TopologyError("cannot read topology file " + from.name + ": " + why);
    };
    if (stat(from.text.c_str(), &info) != 0) throw refused(std::strerror(errno));
    if (S_ISDIR(info.st_mode)) throw refused(std::strerror(EISDIR));
    if (!S_ISREG(info.st_mode)) throw refused("not a regular file");
    if (info.st_size > kMaxBytes)
        throw refused("larger than " + std::to_string(kMaxBytes >> 20) +
                      " MiB, not an hwloc XML export");
}

TopologyPtr open_topology(const Description& from, XmlOf xml_of = XmlOf::kAnotherMachine) {
    hwloc_topology_t raw = nullptr;
    if (init_without_plugins(&raw) != 0) throw TopologyError("hwloc could not start");
    TopologyPtr topo(raw, &hwloc_topology_destroy);
    // Keep disallowed CPUs and nodes so we can tell the user what exists but is not ours.
    // Distances and memory attributes are not part of the model: not loaded.
    // This machine's own export: binding and the allowed CPUs and nodes come from the system.
    const unsigned long this_system =
        xml_of == XmlOf::kThisMachine
            ? HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM | HWLOC_TOPOLOGY_FLAG_THISSYSTEM_ALLOWED_RESOURCES
            : 0;
    hwloc_topology_set_flags(raw, HWLOC_TOPOLOGY_FLAG_INCLUDE_DISALLOWED |
                                      HWLOC_TOPOLOGY_FLAG_NO_DISTANCES |
                                      HWLOC_TOPOLOGY_FLAG_NO_MEMATTRS | this_system);
    // Caches stay: filtering them out moves NUMA nodes attached to an L3 up to the package,
    // and hwloc then widens their cpusets to the whole package.
    // On the live machine Linux's sysfs already says everything the model holds (cores,
    // caches, NUMA, hybrid kinds from cpu_core/cpu_atom and cpu_capacity). hwloc's x86
    // backend would repeat it with CPUID on every PU, binding itself to each in turn: a trap
    // to the hypervisor per CPUID in a VM, and hundreds of migrations on a big server.
    switch (from.kind) {
        case Description::Kind::kThisMachine:
            hwloc_topology_set_components(raw, HWLOC_TOPOLOGY_COMPONENTS_FLAG_BLACKLIST, "x86");
            break;
        case Description::Kind::kXml:
            check_xml_file(from);
            if (hwloc_topology_set_xml(raw, from.text.c_str()) != 0)
                throw TopologyError("cannot read topology file " + from.name + ": " +
                                    std::strerror(errno));
            break;
        case Description::Kind::kSynthetic:
            if (hwloc_topology_set_synthetic(raw, from.text.c_str()) != 0)
                throw TopologyError(from.name + " is not a synthetic topology hwloc reads");
            break;
    }
    // hwloc prints its complaints about a description it still reads (children out of order
    // in an edited XML) as a box of lines on stderr; not for the user of a launcher.
    const bool quiet =
        from.kind != Description::Kind::kThisMachine && !std::getenv("HWLOC_HIDE_ERRORS");
    if (quiet) setenv("HWLOC_HIDE_ERRORS", "2", 1);
    const int loaded = hwloc_topology_load(raw);
    const int load_errno = errno;
    if (quiet) unsetenv("HWLOC_HIDE_ERRORS");
    if (loaded != 0 && from.kind == Description::Kind::kXml && load_errno == EINVAL)
        throw TopologyError("cannot load topology from " + from.name +
                            ": not an hwloc XML topology hwloc can read");
    if (loaded != 0)
        throw TopologyError("cannot load topology" +
                            (from.name.empty() ? std::string() : " from " + from.name) + ": " +
                            std::strerror(load_errno));
    return topo;
}

// "" when hwloc cannot export it: the XML only spares other processes a load of their own.
std::string export_xml(hwloc_topology_t topo) {
    char* buffer = nullptr;
    int length = 0;
    if (hwloc_topology_export_xmlbuffer(topo, &buffer, &length, 0) != 0) return "";
    std::string xml(buffer, length > 0 ? static_cast<std::size_t>(length) - 1 : 0);
    hwloc_free_xmlbuffer(topo, buffer);
    return xml;
}

// Rank of each PU's core kind: 0 for the most performant kind, 1 for the next, ... hwloc
// ranks kinds by efficiency (higher = bigger core); where it could not rank them it leaves
// -1 and we fall back to the kinds' maximum frequency.
std::map<int, int> kind_ranks(hwloc_topology_t topo) {
    std::map<int, int> rank_of_pu;
    const int nr = hwloc_cpukinds_get_nr(topo, 0);
    if (nr <= 1) return rank_of_pu;
    struct Kind {
        Bitmap cpus = make_bitmap();
        long score = 0;
    };
    std::vector<Kind> kinds(static_cast<size_t>(nr));
    for (int k = 0; k < nr; ++k) {
        int efficiency = -1;
        unsigned nr_infos = 0;
        hwloc_info_s* infos = nullptr;
        hwloc_cpukinds_get_info(topo, static_cast<unsigned>(k), kinds[k].cpus.get(), &efficiency,
                                &nr_infos, &infos, 0);
        long frequency = 0;
        for (unsigned i = 0; i < nr_infos; ++i)
            if (std::strcmp(infos[i].name, "FrequencyMaxMHz") == 0)
                frequency = std::atol(infos[i].value);
        kinds[k].score = efficiency >= 0 ? efficiency : frequency;
    }
    std::set<long, std::greater<>> scores;
    for (auto& k : kinds) scores.insert(k.score);
    for (auto& k : kinds) {
        const int rank = static_cast<int>(std::distance(scores.begin(), scores.find(k.score)));
        for (int pu : bitmap_ids(k.cpus.get())) rank_of_pu[pu] = rank;
    }
    return rank_of_pu;
}

}  // namespace

const Pu* Topology::find_pu(int os) const {
    for (const auto& p : pus)
        if (p.os == os) return &p;
    return nullptr;
}

const NumaNode* Topology::find_node(int os) const {
    for (const auto& n : nodes)
        if (n.os == os) return &n;
    return nullptr;
}

std::vector<int> Topology::allowed_cpus() const {
    std::vector<int> out;
    for (const auto& p : pus)
        if (p.allowed) out.push_back(p.os);
    std::sort(out.begin(), out.end());
    return out;
}

namespace {

Topology read_model(hwloc_topology_t t, const std::string& source);

}  // namespace

Topology load_topology(const std::string& xml_path, bool export_machine_xml) {
    const Description from = description_from(xml_path);
    TopologyPtr topo = open_topology(from);
    Topology out = read_model(topo.get(), from.kind == Description::Kind::kThisMachine
                                              ? "this machine"
                                              : (xml_path.empty() ? from.name : xml_path));
    if (export_machine_xml && out.this_machine) out.machine_xml = export_xml(topo.get());
    return out;
}

Topology load_this_machine(const std::string& xml_path) {
    TopologyPtr topo = open_topology({Description::Kind::kXml, xml_path, quote_text(xml_path)},
                                     XmlOf::kThisMachine);
    return read_model(topo.get(), "this machine");
}

namespace {

Topology read_model(hwloc_topology_t t, const std::string& source) {
    Topology out;
    const bool this_system = hwloc_topology_is_thissystem(t);
    out.source = source;
    out.this_machine = this_system;

    // Allowed CPUs: the cgroup's cpuset (hwloc) and, on the live machine, our own affinity.
    Bitmap allowed = make_bitmap();
    hwloc_bitmap_copy(allowed.get(), hwloc_topology_get_allowed_cpuset(t));
    if (this_system) {
        Bitmap bound = make_bitmap();
        if (hwloc_get_cpubind(t, bound.get(), HWLOC_CPUBIND_PROCESS) == 0 &&
            !hwloc_bitmap_iszero(bound.get()))
            hwloc_bitmap_and(allowed.get(), allowed.get(), bound.get());
    }
    hwloc_const_nodeset_t allowed_nodes = hwloc_topology_get_allowed_nodeset(t);

    const int numa_depth = hwloc_get_type_depth(t, HWLOC_OBJ_NUMANODE);
    const unsigned n_nodes = hwloc_get_nbobjs_by_depth(t, numa_depth);
    for (unsigned i = 0; i < n_nodes; ++i) {
        hwloc_obj_t node = hwloc_get_obj_by_depth(t, numa_depth, i);
        NumaNode n;
        n.os = static_cast<int>(node->os_index);
        n.memory = node->attr ? node->attr->numanode.local_memory : 0;
        n.allowed = hwloc_bitmap_isset(allowed_nodes, node->os_index);
        out.nodes.push_back(n);
    }
    std::sort(out.nodes.begin(), out.nodes.end(),
              [](const NumaNode& a, const NumaNode& b) { return a.os < b.os; });

    const auto ranks = kind_ranks(t);
    const int n_pus = hwloc_get_nbobjs_by_type(t, HWLOC_OBJ_PU);
    for (int i = 0; i < n_pus; ++i) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(t, HWLOC_OBJ_PU, static_cast<unsigned>(i));
        Pu pu;
        pu.os = static_cast<int>(obj->os_index);
        hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_CORE, obj);
        // A PU without a Core above it (some VMs, ARM boards) is a core of its own; keep its
        // id apart from real core indexes.
        pu.core = core ? static_cast<int>(core->logical_index) : 1000000 + i;
        if (core) {
            for (unsigned c = 0; c < core->arity; ++c)
                if (core->children[c]->os_index < obj->os_index &&
                    core->children[c]->type == HWLOC_OBJ_PU)
                    ++pu.smt_rank;
        }
        hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(t, HWLOC_OBJ_PACKAGE, obj);
        pu.package = package ? static_cast<int>(package->logical_index) : 0;
        // The local node: among the nodes that list this PU in their cpuset, the one attached
        // nearest it (fewest CPUs: a package's DRAM, not memory the whole machine shares, as
        // CXL is), then the smallest OS index (DRAM before the HBM beside it).
        int nearest = -1;
        for (const auto& n : out.nodes) {
            hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(t, static_cast<unsigned>(n.os));
            if (!node || !node->cpuset || !hwloc_bitmap_isset(node->cpuset, obj->os_index))
                continue;
            const int span = hwloc_bitmap_weight(node->cpuset);
            if (nearest < 0 || span < nearest) {
                nearest = span;
                pu.numa = n.os;
            }
        }
        // A container that sees only some nodes (cpuset.mems) still has CPUs of the others:
        // hwloc lists no node for them, but their complete nodeset still names the node they
        // sit in, so that CPUs of different nodes are never taken for one node.
        if (pu.numa < 0 && obj->complete_nodeset && !hwloc_bitmap_iszero(obj->complete_nodeset))
            pu.numa = hwloc_bitmap_first(obj->complete_nodeset);
        auto rank = ranks.find(pu.os);
        pu.kind_rank = rank == ranks.end() ? 0 : rank->second;
        pu.allowed = hwloc_bitmap_isset(allowed.get(), obj->os_index);
        out.pus.push_back(pu);
    }
    for (auto& n : out.nodes)
        for (const auto& p : out.pus)
            if (p.numa == n.os) n.cpus.push_back(p.os);

    // Offline CPUs: known to the kernel (complete cpuset) but not present as PU objects.
    Bitmap offline = make_bitmap();
    hwloc_bitmap_andnot(offline.get(), hwloc_topology_get_complete_cpuset(t),
                        hwloc_topology_get_topology_cpuset(t));
    out.offline = bitmap_ids(offline.get());
    if (out.pus.empty()) throw TopologyError("topology " + out.source + " has no CPUs");
    return out;
}

}  // namespace

}  // namespace ipex::affinity
