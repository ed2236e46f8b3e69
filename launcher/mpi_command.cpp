#include "mpi_command.h"

#include <algorithm>
#include <cctype>
#include <set>

namespace ipex::launcher {
namespace {

std::string join(const std::vector<std::string>& parts, const std::string& separator) {
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : separator) + p;
    return out;
}

// "--master_addr=x" → "--master-addr": the spelling-independent name of an option word.
std::string option_name(const std::string& word) {
    std::string name = word.substr(0, word.find('='));
    for (std::size_t i = 2; i < name.size(); ++i)
        if (name[i] == '_') name[i] = '-';
    return name;
}

}  // namespace

const char* mpi_name(MpiKind kind) {
    switch (kind) {
        case MpiKind::kHydra:
            return "hydra";
        case MpiKind::kOpenMpi:
            return "openmpi";
        case MpiKind::kSlurm:
            return "slurm";
    }
    return "hydra";
}

MpiSelection choose_mpi(MpiChoice choice, const MpiPrograms& found, bool in_slurm_allocation) {
    switch (choice) {
        case MpiChoice::kHydra:
            if (!found.hydra) throw DistributedError("--mpi hydra: mpiexec.hydra is not on PATH");
            return {MpiKind::kHydra, *found.hydra};
        case MpiChoice::kOpenMpi:
            if (!found.openmpi)
                throw DistributedError("--mpi openmpi: mpiexec.openmpi is not on PATH");
            return {MpiKind::kOpenMpi, *found.openmpi};
        case MpiChoice::kSlurm:
            if (!found.srun) throw DistributedError("--mpi slurm: srun is not on PATH");
            return {MpiKind::kSlurm, *found.srun};
        case MpiChoice::kAuto:
            break;
    }
    if (in_slurm_allocation && found.srun) return {MpiKind::kSlurm, *found.srun};
    if (found.hydra) return {MpiKind::kHydra, *found.hydra};
    if (found.openmpi) return {MpiKind::kOpenMpi, *found.openmpi};
    throw DistributedError(
        "--nnodes needs an MPI launcher: none of mpiexec.hydra, mpiexec.openmpi" +
        std::string(in_slurm_allocation ? ", srun" : "") + " is on PATH");
}

std::vector<std::string> mpi_command(const MpiJob& job) {
    const std::string np = std::to_string(job.nnodes * job.ppn);
    const std::string ppn = std::to_string(job.ppn);
    std::vector<std::string> argv = {job.mpi.program};
    auto add = [&argv](std::initializer_list<std::string> words) {
        argv.insert(argv.end(), words.begin(), words.end());
    };
    switch (job.mpi.kind) {
        case MpiKind::kHydra:
            add({"-np", np, "-ppn", ppn});
            if (!job.hosts.empty()) add({"-hosts", join(job.hosts, ",")});
            // Without it, proxies on other hosts call back to 127.0.0.1 and hang.
            if (job.first_host_local && !job.hosts.empty()) add({"-localhost", job.hosts[0]});
            if (!job.agent.empty()) add({"-launcher", "ssh", "-launcher-exec", job.agent});
            break;
        case MpiKind::kOpenMpi: {
            std::vector<std::string> slots;
            for (const auto& h : job.hosts) slots.push_back(h + ":" + ppn);
            if (slots.empty()) slots.push_back("localhost:" + ppn);
            // Every rank binds itself; Open MPI's own binding would hide the rest of the node.
            add({"-np", np, "--host", join(slots, ","), "--map-by", "ppr:" + ppn + ":node",
                 "--bind-to", "none"});
            if (job.as_root) add({"--allow-run-as-root"});
            if (!job.agent.empty()) add({"--mca", "plm_rsh_agent", job.agent});
            for (const auto& name : job.forwarded_env) add({"-x", name});
            break;
        }
        case MpiKind::kSlurm:
            // One Ctrl-C passed on must end the step: by default srun only prints its status.
            add({"-N", std::to_string(job.nnodes), "-n", np, "--ntasks-per-node", ppn,
                 "--kill-on-bad-exit=1", "--cpu-bind=none", "--quit-on-interrupt"});
            break;
    }
    argv.insert(argv.end(), job.extra.begin(), job.extra.end());
    argv.insert(argv.end(), job.rank_argv.begin(), job.rank_argv.end());
    return argv;
}

std::vector<std::string> split_words(const std::string& text) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    char quote = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (quote == '\'') {
            if (c == '\'')
                quote = 0;
            else
                word += c;
        } else if (quote == '"') {
            if (c == '"')
                quote = 0;
            else if (c == '\\' && i + 1 < text.size() &&
                     std::string("\"\\$`").find(text[i + 1]) != std::string::npos)
                word += text[++i];
            else
                word += c;
        } else if (std::isspace(static_cast<unsigned char>(c))) {
            if (in_word) words.push_back(word);
            word.clear();
            in_word = false;
        } else {
            in_word = true;
            if (c == '\'' || c == '"')
                quote = c;
            else if (c == '\\' && i + 1 < text.size())
                word += text[++i];
            else
                word += c;
        }
    }
    if (quote)
        throw DistributedError("--extra-mpi-params: unbalanced " +
                                   std::string(quote == '"' ? "double" : "single") + " quote in '" +
                                   text + "'",
                               2);
    if (in_word) words.push_back(word);
    return words;
}

std::vector<std::string> rank_wrapper_argv(const std::string& self,
                                           const std::vector<std::string>& option_args,
                                           const std::string& master_addr, int master_port,
                                           const std::string& program,
                                           const std::vector<std::string>& program_args) {
    static const std::set<std::string> kTopLevelValues = {"--hostfile",       "--mpi",
                                                          "--master-addr",    "--master-port",
                                                          "--mpi-agent",      "--extra-mpi-params",
                                                          "--more-mpi-params"};
    static const std::set<std::string> kTopLevelFlags = {"--dry-run", "--rank-wrapper"};
    std::vector<std::string> argv = {self, "--rank-wrapper"};
    for (std::size_t i = 0; i < option_args.size(); ++i) {
        const std::string& word = option_args[i];
        if (word == "--") continue;
        const std::string name = option_name(word);
        if (kTopLevelFlags.count(name)) continue;
        if (kTopLevelValues.count(name)) {
            if (word.find('=') == std::string::npos) ++i;  // its value is the next word
            continue;
        }
        argv.push_back(word);
    }
    if (!master_addr.empty()) argv.insert(argv.end(), {"--master-addr", master_addr});
    argv.insert(argv.end(), {"--master-port", std::to_string(master_port), "--", program});
    argv.insert(argv.end(), program_args.begin(), program_args.end());
    return argv;
}

std::vector<std::string> forwarded_variables(const allocator::Environment& env) {
    static const char* const kNames[] = {
        "PATH",        "LD_LIBRARY_PATH", "LD_PRELOAD",  "PYTHONPATH",           "PYTHONHOME",
        "VIRTUAL_ENV", "CONDA_PREFIX",    "MALLOC_CONF", "TCMALLOC_RELEASE_RATE"};
    static const char* const kPrefixes[] = {"IPEXRUN_", "IPEX_", "OMP_",   "KMP_",      "GOMP_",
                                            "CCL_",     "GLOO_", "TORCH_", "TP_SOCKET_"};
    std::vector<std::string> names;
    for (const auto& [name, value] : env) {
        bool wanted = std::find(std::begin(kNames), std::end(kNames), name) != std::end(kNames);
        for (const char* prefix : kPrefixes) wanted = wanted || name.rfind(prefix, 0) == 0;
        if (wanted) names.push_back(name);
    }
    return names;
}

std::vector<std::string> parse_hostfile(const std::string& text) {
    std::vector<std::string> hosts;
    std::size_t at = 0;
    while (at <= text.size()) {
        std::size_t end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        std::string line = text.substr(at, end - at);
        at = end + 1;
        line = line.substr(0, line.find('#'));
        const auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos) continue;
        std::string host = line.substr(first);
        host = host.substr(0, host.find_first_of(" \t\r"));
        // "host:4" (hydra) or "host slots=4" (Open MPI); an IPv6 address keeps its colons.
        if (std::count(host.begin(), host.end(), ':') == 1) host = host.substr(0, host.find(':'));
        hosts.push_back(host);
    }
    return hosts;
}

}  // namespace ipex::launcher
