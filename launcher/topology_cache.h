// The launching ipexrun's topology handed to the ranks that run on its node: it writes this
// machine's hwloc XML once, and a rank that finds itself on the same node (same boot, same
// host name) reads that file instead of walking sysfs again. Ranks elsewhere, or with hwloc
// told to look elsewhere, load their own topology.
#pragma once

#include <string>

#include "ipex/affinity/topology.h"
#include "ipex/allocator/env_policy.h"

namespace ipex::launcher {

// Where the ranks find the file, and which node wrote it.
inline constexpr const char* kTopologyCacheVariable = "IPEXRUN_TOPOLOGY_CACHE";
inline constexpr const char* kTopologyNodeVariable = "IPEXRUN_TOPOLOGY_CACHE_NODE";

// This node as the cache knows it: the kernel's boot id and the host name. "" if unknown.
std::string node_identity();

// The file for one launch, holding `machine_xml` (this machine's export, see
// affinity::load_topology), removed when this goes away. Writes nothing (and sets no
// variable) where it could not help or cannot be trusted: no XML, a HWLOC_* variable
// redirects hwloc, the node has no identity, or the file cannot be written.
class TopologyCache {
  public:
    TopologyCache(const allocator::Environment& env, const std::string& machine_xml);
    ~TopologyCache();
    TopologyCache(const TopologyCache&) = delete;
    TopologyCache& operator=(const TopologyCache&) = delete;

    // The two variables for the ranks' environment; empty when there is no file.
    allocator::Environment variables() const;

  private:
    std::string path_, node_;
};

// A rank's topology: from the cache when it names this node, else loaded from the system.
affinity::Topology load_rank_topology(const allocator::Environment& env);

}  // namespace ipex::launcher
