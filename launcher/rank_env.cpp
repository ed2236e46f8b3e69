#include "rank_env.h"

#include <cerrno>
#include <climits>
#include <cstdlib>

namespace ipex::launcher {
namespace {

const std::string* find(const allocator::Environment& env, const std::string& name) {
    auto it = env.find(name);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
}

int number(const allocator::Environment& env, const std::string& name, int minimum) {
    const std::string& text = *find(env, name);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (end == text.c_str() || *end != '\0' || errno == ERANGE || v < minimum || v > INT_MAX)
        throw RankEnvError("$" + name + " is '" + text + "', not a number of at least " +
                           std::to_string(minimum));
    return static_cast<int>(v);
}

bool has_all(const allocator::Environment& env, std::initializer_list<const char*> names) {
    for (const char* n : names)
        if (!find(env, n)) return false;
    return true;
}

void check(const RankInfo& r) {
    if (r.rank >= r.world_size || r.local_rank >= r.local_world_size ||
        r.local_world_size > r.world_size)
        throw RankEnvError(r.source + " variables are inconsistent: rank " +
                           std::to_string(r.rank) + " of " + std::to_string(r.world_size) +
                           ", local rank " + std::to_string(r.local_rank) + " of " +
                           std::to_string(r.local_world_size));
}

// With the same number of ranks on every node (what ipexrun asks the launchers for), the
// node index follows from the global and local ranks.
void derive_nodes(RankInfo& r) {
    r.node_rank = (r.rank - r.local_rank) / r.local_world_size;
    r.nnodes = (r.world_size + r.local_world_size - 1) / r.local_world_size;
}

// The rank variables of the MPI launchers, in the order they are tried (before Slurm's:
// hydra run from inside an allocation still sees Slurm's variables of its proxy).
struct MpiVariables {
    const char* source;
    const char* rank;
    const char* size;
    const char* local_rank;
    const char* local_size;
};
constexpr MpiVariables kMpiVariables[] = {
    {"Open MPI", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
     "OMPI_COMM_WORLD_LOCAL_SIZE"},
    {"MPICH hydra", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID", "MPI_LOCALNRANKS"},
};

// One MPI launcher's variables; without `global`, only where the process sits on its node
// (the global rank and size are then the local ones).
RankInfo mpi_rank(const allocator::Environment& env, const MpiVariables& mpi, bool global) {
    RankInfo r;
    r.source = mpi.source;
    if (global) {
        r.rank = number(env, mpi.rank, 0);
        r.world_size = number(env, mpi.size, 1);
    }
    r.local_rank = number(env, mpi.local_rank, 0);
    r.local_world_size = number(env, mpi.local_size, 1);
    if (!global) {
        r.rank = r.local_rank;
        r.world_size = r.local_world_size;
    }
    check(r);
    return r;
}

// A batch script (sbatch) sees SLURM_LOCALID and the job's task counts too, but it is one
// process, not a task of a step: only srun's tasks (or a caller imitating one, without a job
// id) count.
bool slurm_task(const allocator::Environment& env) {
    if (!find(env, "SLURM_LOCALID")) return false;
    if (!find(env, "SLURM_JOB_ID")) return true;
    const std::string* step = find(env, "SLURM_STEP_ID");
    if (!step) step = find(env, "SLURM_STEPID");
    return step && std::strtoul(step->c_str(), nullptr, 10) < 4294967290UL;  // not batch/extern
}

// Slurm's tasks on this node: the step's layout when srun gave it, else --ntasks-per-node.
std::optional<int> slurm_local_size(const allocator::Environment& env, int node) {
    if (const std::string* layout = find(env, "SLURM_STEP_TASKS_PER_NODE")) {
        if (auto n = tasks_on_node(*layout, node)) return n;
        throw RankEnvError("$SLURM_STEP_TASKS_PER_NODE is '" + *layout +
                           "', which names no task count for node " + std::to_string(node));
    }
    if (find(env, "SLURM_NTASKS_PER_NODE")) return number(env, "SLURM_NTASKS_PER_NODE", 1);
    return std::nullopt;
}

std::optional<RankInfo> slurm_local(const allocator::Environment& env) {
    if (!slurm_task(env)) return std::nullopt;
    RankInfo r;
    r.source = "Slurm";
    r.local_rank = number(env, "SLURM_LOCALID", 0);
    r.node_rank = find(env, "SLURM_NODEID") ? number(env, "SLURM_NODEID", 0) : 0;
    const auto local = slurm_local_size(env, r.node_rank);
    if (!local) return std::nullopt;
    r.local_world_size = *local;
    r.rank = find(env, "SLURM_PROCID") ? number(env, "SLURM_PROCID", 0) : r.local_rank;
    r.world_size = find(env, "SLURM_NTASKS") ? number(env, "SLURM_NTASKS", 1) : r.local_world_size;
    r.nnodes = find(env, "SLURM_STEP_NUM_NODES")  ? number(env, "SLURM_STEP_NUM_NODES", 1)
               : find(env, "SLURM_JOB_NUM_NODES") ? number(env, "SLURM_JOB_NUM_NODES", 1)
                                                  : r.node_rank + 1;
    check(r);
    return r;
}

std::optional<RankInfo> slurm_rank(const allocator::Environment& env) {
    if (!has_all(env, {"SLURM_PROCID", "SLURM_NTASKS"})) return std::nullopt;
    return slurm_local(env);
}

}  // namespace

namespace {

// A count of the layout: digits only, 1 to INT_MAX (strtol alone takes " +2" and wraps).
std::optional<long> layout_count(const char* text, char** rest) {
    if (*text < '0' || *text > '9') return std::nullopt;
    errno = 0;
    const long v = std::strtol(text, rest, 10);
    if (errno == ERANGE || v < 1 || v > INT_MAX) return std::nullopt;
    return v;
}

}  // namespace

std::optional<int> tasks_on_node(const std::string& text, int node) {
    // Entries "N" or "N(xM)", comma separated, covering the nodes in order.
    long first = 0;  // at most node + INT_MAX: no overflow
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t end = text.find(',', at);
        if (end == std::string::npos) end = text.size();
        const std::string entry = text.substr(at, end - at);
        char* rest = nullptr;
        const auto count = layout_count(entry.c_str(), &rest);
        if (!count) return std::nullopt;
        long repeat = 1;
        if (*rest == '(') {
            if (rest[1] != 'x') return std::nullopt;
            char* close = nullptr;
            const auto times = layout_count(rest + 2, &close);
            if (!times || *close != ')' || close[1] != '\0') return std::nullopt;
            repeat = *times;
        } else if (*rest != '\0') {
            return std::nullopt;
        }
        if (node < first + repeat) return static_cast<int>(*count);
        first += repeat;
        at = end + 1;
    }
    return std::nullopt;
}

std::optional<RankInfo> rank_from_launcher(const allocator::Environment& env) {
    for (const MpiVariables& mpi : kMpiVariables)
        if (has_all(env, {mpi.rank, mpi.size, mpi.local_rank, mpi.local_size})) {
            RankInfo r = mpi_rank(env, mpi, true);
            derive_nodes(r);
            return r;
        }
    return slurm_rank(env);
}

std::optional<RankInfo> local_rank_from_env(const allocator::Environment& env) {
    if (has_all(env, {"LOCAL_RANK", "LOCAL_WORLD_SIZE"})) {
        RankInfo r;
        r.source = "torchrun";
        r.local_rank = number(env, "LOCAL_RANK", 0);
        r.local_world_size = number(env, "LOCAL_WORLD_SIZE", 1);
        r.world_size = find(env, "WORLD_SIZE") ? number(env, "WORLD_SIZE", 1) : r.local_world_size;
        r.rank = find(env, "RANK") ? number(env, "RANK", 0) : r.local_rank;
        check(r);
        r.node_rank = find(env, "GROUP_RANK") ? number(env, "GROUP_RANK", 0) : 0;
        return r;
    }
    if (auto full = rank_from_launcher(env)) return full;
    // Only the local variables: enough to share the node.
    for (const MpiVariables& mpi : kMpiVariables)
        if (has_all(env, {mpi.local_rank, mpi.local_size})) return mpi_rank(env, mpi, false);
    return slurm_local(env);
}

allocator::Environment torchrun_environment(const RankInfo& r, const std::string& master_addr,
                                            int master_port) {
    return {
        {"RANK", std::to_string(r.rank)},
        {"WORLD_SIZE", std::to_string(r.world_size)},
        {"LOCAL_RANK", std::to_string(r.local_rank)},
        {"LOCAL_WORLD_SIZE", std::to_string(r.local_world_size)},
        {"GROUP_RANK", std::to_string(r.node_rank)},
        {"GROUP_WORLD_SIZE", std::to_string(r.nnodes)},
        {"ROLE_RANK", std::to_string(r.rank)},
        {"ROLE_NAME", "default"},
        {"ROLE_WORLD_SIZE", std::to_string(r.world_size)},
        {"MASTER_ADDR", master_addr},
        {"MASTER_PORT", std::to_string(master_port)},
        {"TORCHELASTIC_RESTART_COUNT", "0"},
        {"TORCHELASTIC_MAX_RESTARTS", "0"},
        {"TORCHELASTIC_RUN_ID", "none"},
    };
}

}  // namespace ipex::launcher
