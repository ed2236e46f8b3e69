#include "distributed_plan.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <set>

#include "ipex/affinity/user_text.h"
#include "plan_json.h"
#include "slurm_nodes.h"

namespace ipex::launcher {
namespace {

std::string lookup(const allocator::Environment& env, const std::string& name) {
    auto it = env.find(name);
    return it == env.end() ? "" : it->second;
}

// More would be a typo, and would overflow the MPI's -np; a real job stays far below.
constexpr int kMaxRanks = 1 << 20;

// Letters, digits, '.', '-', '_', ':' (IPv6), '%' (scope), '[]'; never a leading '-', which
// ssh would read as an option.
bool host_name_like(const std::string& host) {
    if (host.empty() || host[0] == '-') return false;
    for (unsigned char c : host)
        if (!std::isalnum(c) &&
            std::string(".-_:%[]").find(static_cast<char>(c)) == std::string::npos)
            return false;
    return true;
}

// --nprocs-per-node 0: one rank per --nodes-list entry, else per NUMA node with usable CPUs.
int ranks_per_node(const LaunchOptions& o, const affinity::Topology& t) {
    if (o.dist.nprocs_per_node > 0) return o.dist.nprocs_per_node;
    if (const auto nodes = plan_request(o, t).nodes_list; !nodes.empty())
        return static_cast<int>(nodes.size());
    std::set<int> nodes;
    for (const auto& pu : t.pus)
        if (pu.allowed && pu.numa >= 0) nodes.insert(pu.numa);
    return nodes.empty() ? 1 : static_cast<int>(nodes.size());
}

int master_port(const LaunchOptions& o, const allocator::Environment& env) {
    if (o.dist.master_port > 0) return o.dist.master_port;
    const std::string text = lookup(env, "MASTER_PORT");
    if (text.empty()) return 29500;
    char* end = nullptr;
    const long port = std::strtol(text.c_str(), &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        throw DistributedError("$MASTER_PORT is '" + text + "', not a port number", 2);
    return static_cast<int>(port);
}

// Under Slurm rank 0 runs on the first node of the step, which srun takes from the start of
// the allocation: its address as Slurm knows it (the name when scontrol cannot say). Outside
// an allocation srun chooses the nodes only when it starts: "" (each rank reads its step).
std::string slurm_master(const allocator::Environment& env, const DistributedInputs& inputs) {
    std::string list = lookup(env, "SLURM_JOB_NODELIST");
    if (list.empty()) list = lookup(env, "SLURM_NODELIST");
    const auto first = first_slurm_host(list);
    if (!first) return "";
    if (inputs.slurm_node_address)
        if (auto address = inputs.slurm_node_address(*first)) return *address;
    return *first;
}

}  // namespace

DistributedPlan plan_distributed(const LaunchOptions& o, const affinity::Topology& topology,
                                 const allocator::Environment& env, const MachineProbes& probes,
                                 const DistributedInputs& inputs) {
    const DistributedOptions& d = o.dist;
    DistributedPlan plan;
    MpiJob& job = plan.job;
    MpiPrograms found;
    found.hydra = probes.which("mpiexec.hydra");
    found.openmpi = probes.which("mpiexec.openmpi");
    found.srun = probes.which("srun");
    const bool in_allocation = !lookup(env, "SLURM_JOB_ID").empty();
    job.mpi = choose_mpi(d.mpi, found, in_allocation);
    const bool slurm = job.mpi.kind == MpiKind::kSlurm;
    job.nnodes = d.nnodes;
    job.ppn = ranks_per_node(o, topology);
    if (static_cast<long long>(job.nnodes) * job.ppn > kMaxRanks)
        throw DistributedError("--nnodes " + std::to_string(job.nnodes) + " x " +
                                   std::to_string(job.ppn) + " ranks per node is more than " +
                                   std::to_string(kMaxRanks) + " ranks",
                               2);
    for (const auto& host : inputs.hostfile_hosts)
        if (!host_name_like(host))
            throw DistributedError("--hostfile " + d.hostfile + ": " + affinity::quote_text(host) +
                                       " is not a host name or address",
                                   2);

    if (!d.hostfile.empty()) {
        if (inputs.hostfile_hosts.empty())
            throw DistributedError("--hostfile " + d.hostfile + " names no host", 2);
        if (static_cast<std::size_t>(d.nnodes) > inputs.hostfile_hosts.size())
            throw DistributedError("--nnodes " + std::to_string(d.nnodes) + " but --hostfile " +
                                       d.hostfile + " names only " +
                                       std::to_string(inputs.hostfile_hosts.size()) + " host" +
                                       (inputs.hostfile_hosts.size() == 1 ? "" : "s"),
                                   2);
        if (slurm)
            plan.warnings.push_back("--hostfile is ignored under Slurm: srun places the ranks");
        else
            job.hosts.assign(inputs.hostfile_hosts.begin(),
                             inputs.hostfile_hosts.begin() + d.nnodes);
    } else if (d.nnodes > 1 && !slurm) {
        throw DistributedError("--nnodes " + std::to_string(d.nnodes) +
                                   " needs --hostfile (one host a line) with " +
                                   mpi_name(job.mpi.kind),
                               2);
    }
    job.first_host_local =
        !job.hosts.empty() && inputs.is_local_address && inputs.is_local_address(job.hosts[0]);

    // The master is where rank 0 runs: the first host of the hostfile or of the Slurm
    // allocation, unless told otherwise.
    plan.master_addr = !d.master_addr.empty()                ? d.master_addr
                       : !lookup(env, "MASTER_ADDR").empty() ? lookup(env, "MASTER_ADDR")
                       : !job.hosts.empty()                  ? job.hosts[0]
                       : slurm && d.nnodes > 1               ? slurm_master(env, inputs)
                                                             : "127.0.0.1";
    plan.master_port = master_port(o, env);
    plan.master_is_local = !plan.master_addr.empty() && inputs.is_local_address &&
                           inputs.is_local_address(plan.master_addr);

    if (slurm && in_allocation) {
        // An allocation too small makes srun wait or fail late: say so now.
        const std::string tasks = lookup(env, "SLURM_NTASKS");
        const std::string nodes = !lookup(env, "SLURM_JOB_NUM_NODES").empty()
                                      ? lookup(env, "SLURM_JOB_NUM_NODES")
                                      : lookup(env, "SLURM_NNODES");
        const int want = d.nnodes * job.ppn;
        if (!tasks.empty() && std::atoi(tasks.c_str()) < want)
            throw DistributedError("the Slurm allocation (job " + lookup(env, "SLURM_JOB_ID") +
                                   ") has " + tasks + " tasks; " + std::to_string(d.nnodes) +
                                   " nodes x " + std::to_string(job.ppn) + " ranks need " +
                                   std::to_string(want));
        if (!nodes.empty() && std::atoi(nodes.c_str()) < d.nnodes)
            throw DistributedError("the Slurm allocation (job " + lookup(env, "SLURM_JOB_ID") +
                                   ") has " + nodes + " node" + (nodes == "1" ? "" : "s") +
                                   "; --nnodes is " + std::to_string(d.nnodes));
    }

    job.agent = d.mpi_agent;
    if (slurm && !d.mpi_agent.empty())
        plan.warnings.push_back("--mpi-agent is ignored under Slurm");
    job.extra = split_words(d.extra_mpi_params);
    job.as_root = inputs.as_root;
    if (job.mpi.kind == MpiKind::kOpenMpi) job.forwarded_env = forwarded_variables(env);
    job.rank_argv = rank_wrapper_argv(inputs.self, o.option_args, plan.master_addr,
                                      plan.master_port, o.program, o.program_args);
    plan.argv = mpi_command(job);
    return plan;
}

std::string distributed_plan_json(const DistributedPlan& plan, const LaunchOptions& options,
                                  const affinity::Topology& topology,
                                  const allocator::Environment& env, const MachineProbes& probes,
                                  const InstallInfo& install) {
    using Json = nlohmann::ordered_json;
    LaunchOptions rank_options = options;
    rank_options.dist.rank_wrapper = true;
    rank_options.dist.master_addr = plan.master_addr;
    rank_options.dist.master_port = plan.master_port;
    const int nnodes = plan.job.nnodes, ppn = plan.job.ppn;
    // Every rank looks for the same libraries and interpreter: ask the file system once (a
    // thousand ranks made 24000 stat calls).
    const MachineProbes once = asking_once(probes);

    Json doc;
    doc["mpi"] = mpi_name(plan.job.mpi.kind);
    doc["command"] = plan.argv;
    doc["nnodes"] = nnodes;
    doc["nprocs_per_node"] = ppn;
    doc["master_addr"] = plan.master_addr.empty() ? Json(nullptr) : Json(plan.master_addr);
    doc["master_port"] = plan.master_port;
    doc["nodes"] = Json::array();
    for (int node = 0; node < nnodes; ++node) {
        Json n;
        n["node"] = node;
        n["host"] = plan.job.hosts.empty() ? Json(nullptr) : Json(plan.job.hosts[node]);
        n["command"] = plan.job.rank_argv;
        n["ranks"] = Json::array();
        for (int local = 0; local < ppn; ++local) {
            RankInfo rank;
            rank.rank = node * ppn + local;
            rank.world_size = nnodes * ppn;
            rank.local_rank = local;
            rank.local_world_size = ppn;
            rank.node_rank = node;
            rank.nnodes = nnodes;
            rank.source = mpi_name(plan.job.mpi.kind);
            const LaunchPlan p = build_rank_plan(rank_options, topology, env, once, install, rank);
            Json r = Json::parse(plan_to_json(p));
            Json entry = r["instances"].at(0);
            entry["rank"] = rank.rank;
            entry["local_rank"] = local;
            entry["warnings"] = r["warnings"];
            n["ranks"].push_back(std::move(entry));
        }
        doc["nodes"].push_back(std::move(n));
    }
    doc["warnings"] = plan.warnings;
    return doc.dump(2);
}

namespace {
constexpr const char* kFailurePrefix = "the program failed with exit code ";
}

std::string rank_failure_message(int code) {
    return kFailurePrefix + std::to_string(code) + "; ending the job on every node";
}

std::optional<int> parse_rank_failure(const std::string& line) {
    if (line.rfind("ipexrun [rank ", 0) != 0) return std::nullopt;
    const auto at = line.find(kFailurePrefix);
    if (at == std::string::npos) return std::nullopt;
    const char* digits = line.c_str() + at + std::string(kFailurePrefix).size();
    char* end = nullptr;
    const long code = std::strtol(digits, &end, 10);
    if (end == digits || code < 1 || code > 255) return std::nullopt;
    return static_cast<int>(code);
}

}  // namespace ipex::launcher
