#include "topology_cache.h"

#include "host_name.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

namespace ipex::launcher {
namespace {

std::string lookup(const allocator::Environment& env, const std::string& name) {
    auto it = env.find(name);
    return it == env.end() ? "" : it->second;
}

// HWLOC_XMLFILE, HWLOC_SYNTHETIC, HWLOC_FSROOT, HWLOC_COMPONENTS, ... change what hwloc
// reports for "this machine": then nothing is cached or read from a cache.
bool hwloc_redirected(const allocator::Environment& env) {
    for (const auto& [name, value] : env)
        if (name.rfind("HWLOC_", 0) == 0 && name != "HWLOC_PLUGINS_PATH") return true;
    return false;
}

}  // namespace

std::string node_identity() {
    std::ifstream boot("/proc/sys/kernel/random/boot_id");
    std::string boot_id;
    const std::string host = this_host_name();
    if (!std::getline(boot, boot_id) || boot_id.empty() || host.empty()) return "";
    return boot_id + "/" + host;
}

TopologyCache::TopologyCache(const allocator::Environment& env, const std::string& machine_xml) {
    if (machine_xml.empty() || hwloc_redirected(env)) return;
    const std::string node = node_identity();
    if (node.empty()) return;
    std::string dir = lookup(env, "TMPDIR");
    if (dir.empty()) dir = "/tmp";
    std::string path = dir + "/ipexrun-topology-XXXXXX";
    const int fd = mkstemp(path.data());
    if (fd < 0) return;
    const bool written = write(fd, machine_xml.data(), machine_xml.size()) ==
                         static_cast<ssize_t>(machine_xml.size());
    close(fd);
    if (!written) {
        unlink(path.c_str());
        return;
    }
    path_ = path;
    node_ = node;
}

TopologyCache::~TopologyCache() {
    if (!path_.empty()) unlink(path_.c_str());
}

allocator::Environment TopologyCache::variables() const {
    if (path_.empty()) return {};
    return {{kTopologyCacheVariable, path_}, {kTopologyNodeVariable, node_}};
}

affinity::Topology load_rank_topology(const allocator::Environment& env) {
    const std::string path = lookup(env, kTopologyCacheVariable);
    const std::string node = lookup(env, kTopologyNodeVariable);
    if (!path.empty() && !node.empty() && !hwloc_redirected(env) && node == node_identity()) {
        try {
            return affinity::load_this_machine(path);
        } catch (const affinity::TopologyError&) {
            // A file gone or damaged: the system still answers.
        }
    }
    return affinity::load_topology("");
}

}  // namespace ipex::launcher
