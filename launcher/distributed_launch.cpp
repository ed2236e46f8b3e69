#include "distributed_launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>

#include "distributed_plan.h"
#include "host_probe.h"
#include "ipex/affinity/user_text.h"
#include "report_link.h"
#include "slurm_nodes.h"
#include "start_gate.h"
#include "supervisor.h"
#include "text_file.h"
#include "topology_cache.h"

extern char** environ;

namespace ipex::launcher {
namespace {

// The ranks of a healthy launch have all reached the start gate by then, and their hosts
// need no probe; otherwise the probe decides (a failure is reported this much later).
constexpr std::chrono::milliseconds kProbeDelay{1000};

std::vector<std::string> read_hostfile(const std::string& path) {
    if (path.empty()) return {};
    try {
        return parse_hostfile(read_text_file(path));
    } catch (const TextFileError& e) {
        throw DistributedError("--hostfile " + affinity::quote_text(path) + ": " + e.what(), 2);
    }
}

// Starts argv in a process group of its own (killable as a whole) with stdin and stderr on
// /dev/null and stdout on `stdout_fd` (/dev/null when -1). The pid, or -1 with errno set.
pid_t spawn_quiet(const std::vector<std::string>& argv, int stdout_fd = -1) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    if (stdout_fd >= 0)
        posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
    else
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, args[0], &actions, &attr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    return pid;
}

// The standard output of a short command (stdin and stderr on /dev/null), or nullopt when it
// cannot start, fails, or takes longer than `timeout` (then it is killed).
std::optional<std::string> command_output(const std::vector<std::string>& argv,
                                          std::chrono::milliseconds timeout) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return std::nullopt;
    const pid_t pid = spawn_quiet(argv, out[1]);
    close(out[1]);
    if (pid < 0) {
        close(out[0]);
        return std::nullopt;
    }
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        pollfd p{out[0], POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) == 0) {
            timed_out = true;
            break;
        }
        char buffer[4096];
        const ssize_t n = read(out[0], buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
    }
    close(out[0]);
    if (timed_out) kill(-pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return std::nullopt;
    return text;
}

// The address slurm.conf gives a node (NodeAddr; scontrol reports the name when none is set).
std::optional<std::string> ask_slurm_node_address(const std::string& node) {
    const auto output =
        command_output({"scontrol", "show", "node", "-o", node}, std::chrono::seconds(10));
    return output ? slurm_node_address(*output) : std::nullopt;
}

// torch's TCPStore binds the master port on rank 0's host; when that is here, try it now.
void check_port_free(const std::string& host, int port) {
    for (auto address : resolve_host(host)) {
        const int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        const int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);  // as TCPStore does
        socklen_t size = sizeof(sockaddr_in);
        if (address.ss_family == AF_INET) {
            reinterpret_cast<sockaddr_in&>(address).sin_port = htons(static_cast<uint16_t>(port));
        } else {
            reinterpret_cast<sockaddr_in6&>(address).sin6_port = htons(static_cast<uint16_t>(port));
            size = sizeof(sockaddr_in6);
        }
        const int rc = bind(fd, reinterpret_cast<sockaddr*>(&address), size);
        const int error = errno;
        close(fd);
        if (rc != 0 && error == EADDRINUSE)
            throw DistributedError("master port " + std::to_string(port) + " on " + host +
                                   " is already in use; choose another with --master-port");
    }
}

std::string self_path() {
    char self[PATH_MAX] = {};
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    return n > 0 ? std::string(self, static_cast<std::size_t>(n)) : "ipexrun";
}

}  // namespace

int run_distributed(const LaunchOptions& options, const affinity::Topology& topology,
                    const allocator::Environment& env, const JobRunner& runner) {
    const MachineProbes probes = real_probes(env);
    // Ranks on this node read its topology from here (Open MPI forwards the variables too).
    std::optional<TopologyCache> cache;
    allocator::Environment job_env = env;
    if (!options.dry_run) {
        cache.emplace(env, topology.machine_xml);
        for (const auto& [name, value] : cache->variables()) job_env[name] = value;
    }
    DistributedPlan plan;
    std::vector<std::string> remote;
    std::optional<StartGate> gate;
    try {
        DistributedInputs inputs;
        inputs.hostfile_hosts = read_hostfile(options.dist.hostfile);
        inputs.self = self_path();
        inputs.as_root = geteuid() == 0;
        inputs.is_local_address = is_local_address;
        inputs.slurm_node_address = ask_slurm_node_address;
        plan = plan_distributed(options, topology, job_env, probes, inputs);
        if (options.dry_run) {
            std::cout << distributed_plan_json(plan, options, topology, env, probes, this_install())
                      << std::endl;
            return 0;
        }
        if (plan.job.mpi.kind != MpiKind::kSlurm)
            remote = remote_hosts(plan.job.hosts, options.dist.hostfile);
        if (plan.master_is_local) check_port_free(plan.master_addr, plan.master_port);
        // The MPI starts at once; the ranks wait until all have come or the other hosts
        // answered the probe.
        if (const std::string facing = address_facing(remote); !remote.empty() && !facing.empty()) {
            gate.emplace(facing, plan.job.nnodes * plan.job.ppn);
            for (const auto& [name, value] : gate->variables()) job_env[name] = value;
            plan = plan_distributed(options, topology, job_env, probes, inputs);  // forwards them
        } else if (const std::string failure = probe_hosts(remote, plan.job.agent);
                   !failure.empty()) {
            throw DistributedError(failure);
        }
    } catch (const DistributedError& e) {
        spdlog::error("{}", e.what());
        return e.code;
    } catch (const std::runtime_error& e) {  // the gate's port
        spdlog::error("{}", e.what());
        return 1;
    }
    const auto announce = [&plan] {
        for (const auto& w : plan.warnings) spdlog::warn("{}", w);
        spdlog::info("{} node{} x {} rank{} through {}", plan.job.nnodes,
                     plan.job.nnodes == 1 ? "" : "s", plan.job.ppn, plan.job.ppn == 1 ? "" : "s",
                     plan.job.mpi.program);
    };
    if (!gate) announce();  // else once the hosts have answered: a refusal is one line

    LaunchPlan run;
    run.bind = BindMethod::kNone;
    run.summary = false;  // every rank reports its own end
    InstanceLaunch mpi;
    mpi.label = mpi_name(plan.job.mpi.kind);
    mpi.raw_output = true;  // the ranks prefix their own lines
    mpi.cpus = topology.allowed_cpus();
    mpi.argv = plan.argv;
    if (cache) mpi.env = cache->variables();
    if (gate)
        for (const auto& [name, value] : gate->variables()) mpi.env[name] = value;
    run.instances.push_back(std::move(mpi));
    SupervisorOptions supervise;
    if (gate) {
        gate->open_when(
            [hosts = remote, agent = plan.job.agent] { return probe_hosts(hosts, agent); },
            kProbeDelay);
        supervise.start_verdict_fd = gate->verdict_fd();
        supervise.on_go = announce;
    }
    supervise.grace = std::chrono::milliseconds(static_cast<long>(options.grace_seconds * 1000));
    std::optional<int> first_failure;
    supervise.stderr_observer = [&first_failure](const std::string& line) {
        if (!first_failure) first_failure = parse_rank_failure(line);
    };
    bool failed_alone = false;  // the MPI launcher failed, not because ipexrun was signalled
    supervise.on_failure = [&failed_alone](int) { failed_alone = true; };
    const int code =
        runner ? runner(run, supervise, plan.job.nnodes * plan.job.ppn) : run_plan(run, supervise);
    return failed_alone && first_failure ? *first_failure : code;
}

}  // namespace ipex::launcher
