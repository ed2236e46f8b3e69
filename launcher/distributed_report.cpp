#include "distributed_report.h"

#include "host_name.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "benchmark_run.h"
#include "ipex/affinity/cpu_list.h"
#include "mpi_command.h"
#include "report_link.h"
#include "run_summary.h"
#include "text_file.h"

namespace ipex::launcher {
namespace {

// A rank gives up on the launcher after this long (and runs unreported); the launcher waits
// at most a few of these for ranks that have not connected.
constexpr int kConnectTimeoutMs = 5000;
constexpr int kSendTimeoutMs = 10000;

// The hosts of --hostfile, then the master: what the other nodes are. A hostfile that cannot
// be read is run_distributed's to report.
std::vector<std::string> peer_hosts(const LaunchOptions& options,
                                    const allocator::Environment& env) {
    std::vector<std::string> peers;
    if (!options.dist.hostfile.empty()) try {
            peers = parse_hostfile(read_text_file(options.dist.hostfile));
        } catch (const TextFileError&) {
        }
    if (!options.dist.master_addr.empty()) peers.push_back(options.dist.master_addr);
    if (const auto master = env.find("MASTER_ADDR"); master != env.end() && !master->second.empty())
        peers.push_back(master->second);
    return peers;
}

// Hands the connection to the rank's instance, then reports how the instance ended.
class RankReportLink : public InstanceObserver {
  public:
    explicit RankReportLink(int fd) : fd_(fd) {}
    ~RankReportLink() override {
        if (fd_ >= 0) close(fd_);
    }
    int fd_for(std::size_t instance) override { return instance == 0 ? fd_ : -1; }
    void ended(std::size_t instance, int wait_status) override {
        if (instance != 0 || fd_ < 0) return;
        send_all(fd_,
                 "exit " + std::to_string(exit_code(wait_status)) + " " + status_text(wait_status) +
                     "\n",
                 kSendTimeoutMs);  // a launcher that is gone has nobody to tell
        close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

constexpr const char* kUnreachablePhrase = "cannot reach the launching ipexrun at ";

}  // namespace

std::string unreachable_report_message(const std::string& address, const std::string& why) {
    return kUnreachablePhrase + address + " (" + why +
           "); this rank runs unreported: its numbers will be missing from the report";
}

std::optional<std::pair<int, std::string>> parse_unreachable_report(const std::string& line) {
    const std::string start = "ipexrun [rank ";
    if (line.rfind(start, 0) != 0 || line.find(kUnreachablePhrase) == std::string::npos)
        return std::nullopt;
    const char* digits = line.c_str() + start.size();
    char* end = nullptr;
    const long rank = std::strtol(digits, &end, 10);
    if (end == digits || rank < 0 || rank > 1000000000) return std::nullopt;
    std::string host;
    if (*end == ' ') host = std::string(end + 1, std::strcspn(end + 1, "] "));
    return std::make_pair(static_cast<int>(rank), host);
}

int run_distributed_benchmark(const LaunchOptions& options, const affinity::Topology& topology,
                              const allocator::Environment& env,
                              const DistributedLauncher& run_distributed) {
    if (options.dry_run) return run_distributed(options, topology, env, {});
    if (const std::string problem = prepare_report_dir(options.benchmark.report_dir);
        !problem.empty()) {
        spdlog::error("{}", problem);
        return 2;
    }
    // Listen on the address the other nodes reach this machine at; under Slurm, where the
    // nodes are not known yet, on every address.
    const std::string host = address_facing(peer_hosts(options, env));
    std::optional<ReportListener> listener;
    try {
        listener.emplace(host);
    } catch (const std::runtime_error& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    const std::string address = join_address(host, listener->port());
    const std::string key = random_key();
    allocator::Environment with_address = env;
    with_address[kReportAddressVariable] = address;
    with_address[kReportKeyVariable] = key;
    // mpiexec and srun pass them on to the ranks (Open MPI by name, from with_address)
    setenv(kReportAddressVariable, address.c_str(), 1);
    setenv(kReportKeyVariable, key.c_str(), 1);
    std::vector<std::string> command = {"ipexrun"};
    command.insert(command.end(), options.option_args.begin(), options.option_args.end());
    command.push_back(options.program);
    command.insert(command.end(), options.program_args.begin(), options.program_args.end());
    const JobRunner runner = [&](const LaunchPlan& job, const SupervisorOptions& supervise,
                                 int ranks) {
        BenchmarkRun run;
        run.options = &options;
        run.topology = &topology;
        run.command = command;
        run.report_dir = options.benchmark.report_dir;
        run.progress = true;
        run.listen_fd = listener->fd();
        run.remote_ranks = static_cast<std::size_t>(ranks);
        run.rank_key = key;
        return run_benchmark(job, supervise, run).exit_code;
    };
    return run_distributed(options, topology, with_address, runner);
}

int run_reporting_rank(const LaunchPlan& plan, const SupervisorOptions& supervise,
                       const std::string& address, const std::string& key) {
    // The instance gets the connection, not the means to open another one.
    unsetenv(kReportAddressVariable);
    unsetenv(kReportKeyVariable);
    const InstanceLaunch* instance = plan.instances.empty() ? nullptr : &plan.instances[0];
    if (!instance) return run_plan(plan, supervise);
    auto [host, port] = split_address(address);
    if (host.empty())  // under Slurm: the node srun (the launching ipexrun) runs on
        if (const char* launch_node = std::getenv("SLURM_LAUNCH_NODE_IPADDR"); launch_node)
            host = launch_node;
    if (host.empty() && instance->env.count("MASTER_ADDR")) host = instance->env.at("MASTER_ADDR");
    const int fd = connect_within(host, port, kConnectTimeoutMs);
    const auto rank = instance->env.find("RANK");
    const std::string hello =
        "hello " + short_host_name(this_host_name()) + " " +
        (rank != instance->env.end() ? rank->second : std::to_string(instance->index)) + " " +
        affinity::format_id_list(instance->cpus) + " " + key + "\n";
    if (fd < 0 || !send_all(fd, hello, kSendTimeoutMs)) {
        spdlog::warn("{}", unreachable_report_message(host + ":" + port, std::strerror(errno)));
        if (fd >= 0) close(fd);
        LaunchPlan unreported = plan;  // the program measures alone, without a descriptor 3
        unreported.instances[0].env.erase("IPEXRUN_REPORT_FD");
        return run_plan(unreported, supervise);
    }
    RankReportLink link(fd);
    SupervisorOptions with_link = supervise;
    with_link.observer = &link;
    return run_plan(plan, with_link);
}

}  // namespace ipex::launcher
