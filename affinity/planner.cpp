#include "ipex/affinity/planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "ipex/affinity/cpu_list.h"

namespace ipex::affinity {
namespace {

using PuList = std::vector<const Pu*>;

std::vector<int> os_ids(const PuList& pus) {
    std::vector<int> ids;
    for (const Pu* p : pus) ids.push_back(p->os);
    std::sort(ids.begin(), ids.end());
    return ids;
}

std::string describe(const PuList& pus) {
    return std::to_string(pus.size()) + " (CPUs " + format_id_list(os_ids(pus)) + ")";
}

// The effective request after the latency/throughput presets are applied.
struct Shape {
    int ninstances = 0;
    std::vector<int> sizes{0};
    bool bind = false;
    bool logical = false;
};

Shape resolve_shape(const PlanRequest& r, std::vector<std::string>& warnings) {
    if (r.latency_mode && r.throughput_mode)
        throw PlanError("--latency-mode and --throughput-mode cannot be used together");
    Shape s;
    s.ninstances = r.ninstances;
    if (!r.ncores_per_instance.empty()) s.sizes = r.ncores_per_instance;
    s.bind = r.bind_numa_node;
    s.logical = r.use_logical_cores;
    const bool explicit_shape = r.ninstances != 0 || s.sizes != std::vector<int>{0};
    if (r.latency_mode) {
        if (explicit_shape)
            warnings.push_back("--latency-mode replaces --ninstances/--ncores-per-instance");
        s = Shape{0, {4}, false, false};
    } else if (r.throughput_mode) {
        if (explicit_shape)
            warnings.push_back("--throughput-mode replaces --ninstances/--ncores-per-instance");
        s.ninstances = 0;  // one per node, decided once the candidates are known
        s.sizes = {0};
        s.bind = true;
    }
    if (s.ninstances < 0) {
        if (s.ninstances != -1) throw PlanError("--ninstances must be 0 or more");
        s.ninstances = 0;  // -1 was the old spelling of "not set"
    }
    if (s.sizes.size() > 1) {
        for (int v : s.sizes)
            if (v <= 0)
                throw PlanError("each of several --ncores-per-instance values must be positive");
    } else if (s.sizes[0] < -1) {
        throw PlanError("--ncores-per-instance must be -1 (greedy), 0 (even split) or a size");
    }
    return s;
}

const Pu* allowed_pu(const Topology& t, int os) {
    const Pu* pu = t.find_pu(os);
    const std::string allowed = format_id_list(t.allowed_cpus());
    if (!pu) {
        const bool offline = std::count(t.offline.begin(), t.offline.end(), os) > 0;
        throw PlanError("CPU " + std::to_string(os) +
                        (offline ? " is offline" : " does not exist") +
                        "; usable CPUs: " + allowed);
    }
    if (!pu->allowed)
        throw PlanError(
            "CPU " + std::to_string(os) +
            " is not allowed for this process (cgroup or affinity); usable CPUs: " + allowed);
    return pu;
}

std::string nodes_with_cpus(const Topology& t) {
    std::vector<int> ids;
    for (const auto& n : t.nodes)
        if (!n.cpus.empty()) ids.push_back(n.os);
    return ids.empty() ? "none" : format_id_list(ids);
}

PuList select_candidates(const Topology& t, const PlanRequest& r, bool logical,
                         std::vector<std::string>& warnings) {
    PuList pus;
    if (!r.cores_list.empty()) {
        if (!r.nodes_list.empty()) warnings.push_back("--nodes-list is ignored: --cores-list wins");
        for (int os : r.cores_list) pus.push_back(allowed_pu(t, os));
    } else if (!r.nodes_list.empty()) {
        for (int id : r.nodes_list) {
            const NumaNode* node = t.find_node(id);
            if (!node)
                throw PlanError("NUMA node " + std::to_string(id) +
                                " does not exist; nodes with CPUs: " + nodes_with_cpus(t));
            if (node->cpus.empty())
                throw PlanError("NUMA node " + std::to_string(id) +
                                " has memory but no CPUs; nodes with CPUs: " + nodes_with_cpus(t));
            size_t before = pus.size();
            for (int os : node->cpus)
                if (const Pu* pu = t.find_pu(os); pu && pu->allowed) pus.push_back(pu);
            if (pus.size() == before)
                throw PlanError("none of NUMA node " + std::to_string(id) + "'s CPUs (" +
                                format_id_list(node->cpus) +
                                ") is allowed; usable CPUs: " + format_id_list(t.allowed_cpus()));
        }
    } else {
        for (const auto& p : t.pus)
            if (p.allowed) pus.push_back(&p);
        if (pus.empty()) throw PlanError("no CPU of " + t.source + " is allowed for this process");
    }

    if (!r.use_e_cores) {
        const bool any_p_core =
            std::any_of(pus.begin(), pus.end(), [](const Pu* p) { return !p->efficiency_core(); });
        if (!any_p_core)
            throw PlanError("only efficiency cores are selected (CPUs " +
                            format_id_list(os_ids(pus)) + "); add --use-e-cores to use them");
        pus.erase(std::remove_if(pus.begin(), pus.end(),
                                 [](const Pu* p) { return p->efficiency_core(); }),
                  pus.end());
    }
    if (!logical) {
        // One hardware thread per core: the first selected sibling (normally the core's
        // first SMT thread; its next one when the first is not allowed or not listed).
        std::map<int, const Pu*> first_of_core;
        for (const Pu* p : pus) {
            auto [it, fresh] = first_of_core.emplace(p->core, p);
            if (!fresh && p->smt_rank < it->second->smt_rank) it->second = p;
        }
        PuList physical;
        for (const Pu* p : pus)
            if (first_of_core[p->core] == p) physical.push_back(p);
        pus.swap(physical);
    }
    // Whole cores together, cores in topology order (so sockets and nodes stay contiguous
    // whatever the OS numbering is).
    std::stable_sort(pus.begin(), pus.end(), [](const Pu* a, const Pu* b) {
        return a->core != b->core ? a->core < b->core : a->smt_rank < b->smt_rank;
    });
    return pus;
}

// Candidates grouped by local NUMA node, in order of first appearance.
std::vector<PuList> group_by_node(const PuList& pus) {
    std::vector<PuList> groups;
    std::map<int, size_t> index;
    for (const Pu* p : pus) {
        auto [it, fresh] = index.emplace(p->numa, groups.size());
        if (fresh) groups.emplace_back();
        groups[it->second].push_back(p);
    }
    return groups;
}

std::string too_many(int n, const PuList& pus, bool logical) {
    return std::to_string(n) + " instances asked but only " + describe(pus) +
           (logical ? "" : " physical cores") + " are available" +
           (logical ? "" : "; --use-logical-cores adds SMT siblings");
}

// Cuts `pool` into `count` consecutive instances of pool.size()/count cores; greedy hands the
// leftover cores out one each to the first instances, otherwise they stay unused.
void split_evenly(const PuList& pool, int count, bool greedy, std::vector<PuList>& out) {
    const size_t base = pool.size() / static_cast<size_t>(count);
    size_t extra = greedy ? pool.size() % static_cast<size_t>(count) : 0;
    size_t at = 0;
    for (int i = 0; i < count; ++i) {
        size_t size = base + (extra > 0 ? 1 : 0);
        if (extra > 0) --extra;
        out.emplace_back(pool.begin() + static_cast<long>(at),
                         pool.begin() + static_cast<long>(at + size));
        at += size;
    }
}

// How many instances each node gets when `n` instances are spread over the nodes in
// proportion to their size, every node used at least once if it can be.
std::vector<int> instances_per_node(const std::vector<PuList>& groups, int n, size_t total) {
    std::vector<int> count;
    for (const auto& g : groups) {
        const size_t share = static_cast<size_t>(n) * g.size();
        count.push_back(static_cast<int>(share / total) +
                        ((share % total || share < total) ? 1 : 0));
    }
    auto sum = [&] {
        int s = 0;
        for (int c : count) s += c;
        return s;
    };
    // Take instances back from the node whose instances would be biggest-per-core-starved,
    // i.e. the node with the fewest cores per instance; a node down to one instance is kept.
    while (sum() > n) {
        size_t pick = groups.size();
        double best = static_cast<double>(total);
        for (size_t i = 0; i < groups.size(); ++i) {
            if (count[i] <= 1) continue;
            const double per = static_cast<double>(groups[i].size()) / count[i];
            if (per < best) {
                best = per;
                pick = i;
            }
        }
        if (pick == groups.size()) break;
        --count[pick];
    }
    // Still too many (more nodes than instances): drop the smallest nodes, later ones first.
    std::vector<size_t> order(groups.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        return groups[a].size() != groups[b].size() ? groups[a].size() < groups[b].size() : a > b;
    });
    for (size_t i : order) {
        if (sum() <= n) break;
        count[i] = 0;
    }
    return count;
}

std::vector<PuList> split_even(const PuList& pus, const Shape& s, bool greedy) {
    const int n = s.ninstances == 0 ? 1 : s.ninstances;
    if (static_cast<size_t>(n) > pus.size()) throw PlanError(too_many(n, pus, s.logical));
    std::vector<PuList> out;
    if (!s.bind) {
        split_evenly(pus, n, greedy, out);
        return out;
    }
    const auto groups = group_by_node(pus);
    const auto count = instances_per_node(groups, n, pus.size());
    for (size_t g = 0; g < groups.size(); ++g)
        if (count[g] > 0) split_evenly(groups[g], count[g], greedy, out);
    return out;
}

std::vector<PuList> split_fixed(const PuList& pus, const Shape& s, Strategy strategy) {
    const size_t size = static_cast<size_t>(s.sizes[0]);
    const std::vector<PuList> pools = s.bind ? group_by_node(pus) : std::vector<PuList>{pus};
    struct Chunk {
        size_t pool, k;
    };
    std::vector<Chunk> chunks;
    size_t largest = 0;
    for (size_t p = 0; p < pools.size(); ++p) {
        largest = std::max(largest, pools[p].size());
        for (size_t k = 0; k < pools[p].size() / size; ++k) chunks.push_back({p, k});
    }
    const std::string where = s.bind ? "a NUMA node" : "the selected CPUs";
    if (chunks.empty())
        throw PlanError("an instance of " + std::to_string(size) + " cores does not fit in " +
                        where + ": at most " + std::to_string(largest) + " of " + describe(pus) +
                        " are available there");
    const size_t n = s.ninstances == 0 ? chunks.size() : static_cast<size_t>(s.ninstances);
    if (n > chunks.size())
        throw PlanError(std::to_string(n) + " instances of " + std::to_string(size) +
                        " cores do not fit: " + std::to_string(chunks.size()) + " fit in " +
                        describe(pus) + (s.bind ? " without crossing NUMA nodes" : ""));
    std::vector<Chunk> picked;
    if (strategy == Strategy::kClose || n == chunks.size()) {
        picked.assign(chunks.begin(), chunks.begin() + static_cast<long>(n));
    } else if (pools.size() == 1) {
        // Spread out with a fixed stride where that yields enough instances (the peers'
        // layout), otherwise evenly: never fewer instances than asked.
        const size_t stride = (chunks.size() + n - 1) / n;
        for (size_t i = 0; i < chunks.size() && picked.size() < n; i += stride)
            picked.push_back(chunks[i]);
        if (picked.size() < n) {
            picked.clear();
            for (size_t i = 0; i < n; ++i) picked.push_back(chunks[i * chunks.size() / n]);
        }
    } else {
        // Deal one chunk per node in turn, then list them node by node.
        std::vector<size_t> next(pools.size(), 0);
        while (picked.size() < n) {
            for (size_t p = 0; p < pools.size() && picked.size() < n; ++p)
                if (next[p] < pools[p].size() / size) picked.push_back({p, next[p]++});
        }
        std::sort(picked.begin(), picked.end(), [](const Chunk& a, const Chunk& b) {
            return a.pool != b.pool ? a.pool < b.pool : a.k < b.k;
        });
    }
    std::vector<PuList> out;
    for (const auto& c : picked) {
        const auto& pool = pools[c.pool];
        out.emplace_back(pool.begin() + static_cast<long>(c.k * size),
                         pool.begin() + static_cast<long>((c.k + 1) * size));
    }
    return out;
}

std::vector<PuList> split_sizes(const PuList& pus, const Shape& s) {
    if (s.ninstances != 0 && static_cast<size_t>(s.ninstances) != s.sizes.size())
        throw PlanError("--ninstances " + std::to_string(s.ninstances) + " does not match the " +
                        std::to_string(s.sizes.size()) + " sizes of --ncores-per-instance");
    std::vector<PuList> pools = s.bind ? group_by_node(pus) : std::vector<PuList>{pus};
    std::vector<size_t> used(pools.size(), 0);
    std::vector<PuList> out;
    for (int want : s.sizes) {
        const size_t size = static_cast<size_t>(want);
        size_t p = 0;
        while (p < pools.size() && pools[p].size() - used[p] < size) ++p;
        if (p == pools.size()) {
            std::string sizes;
            for (int v : s.sizes) sizes += (sizes.empty() ? "" : " ") + std::to_string(v);
            throw PlanError("instances of " + sizes + " cores do not fit" +
                            (s.bind ? " NUMA node by node" : "") + " in " + describe(pus));
        }
        out.emplace_back(pools[p].begin() + static_cast<long>(used[p]),
                         pools[p].begin() + static_cast<long>(used[p] + size));
        used[p] += size;
    }
    return out;
}

std::vector<int> memory_nodes(const Topology& t, const std::vector<int>& cpus) {
    std::set<int> nodes;
    for (int os : cpus) {
        const Pu* pu = t.find_pu(os);
        if (!pu || pu->numa < 0) continue;
        const NumaNode* node = t.find_node(pu->numa);
        if (node && node->allowed) nodes.insert(node->os);
    }
    return {nodes.begin(), nodes.end()};
}

std::vector<int> selected_indexes(const std::vector<int>& wanted, size_t count) {
    std::vector<int> all(count);
    for (size_t i = 0; i < count; ++i) all[i] = static_cast<int>(i);
    if (wanted.empty() || std::count(wanted.begin(), wanted.end(), -1) > 0) return all;
    std::set<int> picked;
    for (int i : wanted) {
        if (i < 0 || static_cast<size_t>(i) >= count)
            throw PlanError("--instance-idx " + std::to_string(i) +
                            " is out of range: the plan has " + std::to_string(count) +
                            " instances (0-" + std::to_string(count - 1) + ")");
        picked.insert(i);
    }
    return {picked.begin(), picked.end()};
}

}  // namespace

Plan plan_instances(const Topology& topology, const PlanRequest& request) {
    Plan plan;
    Shape shape = resolve_shape(request, plan.warnings);
    const PuList pus = select_candidates(topology, request, shape.logical, plan.warnings);
    if (request.throughput_mode) shape.ninstances = static_cast<int>(group_by_node(pus).size());
    if (request.latency_mode && pus.size() < 4) {
        plan.warnings.push_back("--latency-mode wants 4 cores an instance; only " + describe(pus) +
                                " are available, so one instance uses them all");
        shape.sizes = {0};
        shape.ninstances = 1;
    }

    std::vector<PuList> groups;
    if (shape.sizes.size() > 1)
        groups = split_sizes(pus, shape);
    else if (shape.sizes[0] <= 0)
        groups = split_even(pus, shape, shape.sizes[0] == -1);
    else
        groups = split_fixed(pus, shape, request.strategy);

    for (int index : selected_indexes(request.instance_idx, groups.size())) {
        InstanceCpus inst;
        inst.index = index;
        inst.cpus = os_ids(groups[static_cast<size_t>(index)]);
        inst.nodes = memory_nodes(topology, inst.cpus);
        plan.instances.push_back(std::move(inst));
    }
    return plan;
}

}  // namespace ipex::affinity
