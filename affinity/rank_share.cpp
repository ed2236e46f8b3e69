#include "ipex/affinity/rank_share.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "ipex/affinity/cpu_list.h"

namespace ipex::affinity {
namespace {

bool has_size(const PlanRequest& r) {
    return !r.ncores_per_instance.empty() && r.ncores_per_instance != std::vector<int>{0};
}

// Every CPU the request selects on this topology (one instance holding them all).
Plan all_candidates(const Topology& t, const PlanRequest& base) {
    PlanRequest all = base;
    all.ninstances = 1;
    all.ncores_per_instance = {0};
    all.instance_idx = {};
    all.latency_mode = all.throughput_mode = all.bind_numa_node = false;
    return plan_instances(t, all);
}

std::size_t numa_nodes_of(const Topology& t, const std::vector<int>& cpus) {
    std::set<int> nodes;
    for (int os : cpus)
        if (const Pu* pu = t.find_pu(os)) nodes.insert(pu->numa);
    return nodes.size();
}

}  // namespace

Plan plan_rank_share(const Topology& t, const PlanRequest& base, int local_rank, int local_size) {
    if (local_size < 1 || local_rank < 0 || local_rank >= local_size)
        throw PlanError("local rank " + std::to_string(local_rank) + " of " +
                        std::to_string(local_size) + " ranks is out of range");
    Plan whole = all_candidates(t, base);
    const std::vector<int> candidates = whole.instances.at(0).cpus;

    if (!has_size(base) && static_cast<std::size_t>(local_size) > candidates.size()) {
        // More ranks than CPUs (MPI's --oversubscribe): each rank still gets one CPU of its own
        // choosing, round-robin, so that the ranks spread instead of piling onto CPU 0.
        PlanRequest one = base;
        one.cores_list = {candidates[static_cast<std::size_t>(local_rank) % candidates.size()]};
        one.nodes_list = {};
        one.use_logical_cores = true;
        one.use_e_cores = true;
        Plan p = all_candidates(t, one);
        p.instances.at(0).index = local_rank;
        p.warnings = whole.warnings;
        p.warnings.push_back(std::to_string(local_size) + " ranks on this node but only " +
                             std::to_string(candidates.size()) + " CPUs (" +
                             format_id_list(candidates) + "): ranks share CPUs");
        return p;
    }

    PlanRequest r = base;
    r.ninstances = local_size;
    r.instance_idx = {local_rank};
    r.latency_mode = r.throughput_mode = false;
    if (!has_size(base)) {
        r.ncores_per_instance = {-1};  // greedy: no CPU of the node is left out
        // Per NUMA node only when every node can get a rank; otherwise nodes would go unused.
        r.bind_numa_node = base.bind_numa_node ||
                           static_cast<std::size_t>(local_size) >= numa_nodes_of(t, candidates);
    }
    Plan p = plan_instances(t, r);
    p.warnings.insert(p.warnings.begin(), whole.warnings.begin(), whole.warnings.end());
    return p;
}

CclSplit split_for_ccl(const Topology& t, const std::vector<int>& share, int workers,
                       bool logical_for_ccl, const std::vector<int>& within) {
    CclSplit split;
    if (workers < 0) throw PlanError("--ccl-worker-count must be 0 or more");
    if (workers == 0) {
        split.omp_cpus = split.all_cpus = share;
        return split;
    }
    // The share's cores in topology order, each with its CPUs, first SMT thread first.
    std::map<int, std::vector<const Pu*>> cores;
    for (int os : share) {
        const Pu* pu = t.find_pu(os);
        if (!pu) throw PlanError("CPU " + std::to_string(os) + " is not in the topology");
        cores[pu->core].push_back(pu);
    }
    for (auto& [core, pus] : cores)
        std::sort(pus.begin(), pus.end(),
                  [](const Pu* a, const Pu* b) { return a->smt_rank < b->smt_rank; });
    const std::string share_text = std::to_string(cores.size()) + " core" +
                                   (cores.size() == 1 ? "" : "s") + " (CPUs " +
                                   format_id_list(share) + ")";
    const auto count = static_cast<std::size_t>(workers);

    if (logical_for_ccl) {
        if (count > cores.size())
            throw PlanError("--ccl-worker-count " + std::to_string(workers) +
                            " with --logical-cores-for-ccl needs as many cores; the share has " +
                            share_text);
        split.omp_cpus = share;
        const std::set<int> in_share(share.begin(), share.end());
        auto it = cores.begin();
        for (std::size_t k = 0; k < count; ++k, ++it) {
            const Pu* sibling = nullptr;
            for (const Pu& pu : t.pus)
                if (pu.core == it->first && pu.allowed && !in_share.count(pu.os) &&
                    (within.empty() ||
                     std::find(within.begin(), within.end(), pu.os) != within.end())) {
                    sibling = &pu;
                    break;
                }
            if (!sibling)
                throw PlanError(
                    "--logical-cores-for-ccl: the core of CPU " +
                    std::to_string(it->second.front()->os) + " has no free SMT sibling" +
                    (within.empty() ? std::string() : " in --cores-list") + " for a oneCCL worker");
            split.ccl_cpus.push_back(sibling->os);
        }
    } else {
        if (count >= cores.size())
            throw PlanError("--ccl-worker-count " + std::to_string(workers) +
                            " leaves no core for OpenMP in a rank's share of " + share_text);
        std::size_t k = 0;
        for (const auto& [core, pus] : cores) {
            if (k++ < count) {
                split.ccl_cpus.push_back(pus.front()->os);  // one CPU a worker
            } else {
                for (const Pu* pu : pus) split.omp_cpus.push_back(pu->os);
            }
        }
    }
    std::sort(split.omp_cpus.begin(), split.omp_cpus.end());
    split.all_cpus = split.omp_cpus;
    split.all_cpus.insert(split.all_cpus.end(), split.ccl_cpus.begin(), split.ccl_cpus.end());
    std::sort(split.all_cpus.begin(), split.all_cpus.end());
    return split;
}

}  // namespace ipex::affinity
