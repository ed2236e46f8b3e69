#include "spawner.h"

#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <vector>

#include "ipex/affinity/cpu_list.h"
#include "signals.h"

extern char** environ;

namespace ipex::launcher {

namespace {

// A node set in the form set_mempolicy takes. The kernel reads maxnode - 1 bits, hence
// the + 1 (libnuma does the same).
struct NodeMask {
    std::vector<unsigned long> words;
    unsigned long maxnode = 0;

    explicit NodeMask(const std::vector<int>& nodes) {
        constexpr int kBits = 8 * sizeof(unsigned long);
        for (int node : nodes) {
            if (node < 0) continue;
            const std::size_t word = static_cast<std::size_t>(node) / kBits;
            if (words.size() <= word) words.resize(word + 1, 0);
            words[word] |= 1UL << (node % kBits);
        }
        maxnode = words.size() * kBits + 1;
    }
};

long apply_memory_policy(MemoryPolicy policy, const NodeMask& all, const NodeMask& first) {
    switch (policy) {
        case MemoryPolicy::kBind:
            return set_mempolicy(MPOL_BIND, all.words.data(), all.maxnode);
        case MemoryPolicy::kPreferred:
            return set_mempolicy(MPOL_PREFERRED, first.words.data(), first.maxnode);
        case MemoryPolicy::kNone:
            break;
    }
    return 0;
}

std::vector<int> first_node(const std::vector<int>& nodes) {
    return nodes.empty() ? std::vector<int>{} : std::vector<int>{nodes.front()};
}

// Writes all of a buffer, or gives up; for messages from a child before exec.
void write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

void write_error_and_exit(const std::string& prefix, int error, int code) {
    const char* reason = std::strerror(error);
    write_all(STDERR_FILENO, prefix.data(), prefix.size());
    write_all(STDERR_FILENO, reason, std::strlen(reason));
    write_all(STDERR_FILENO, "\n", 1);
    _exit(code);
}

// The child's environment: the launcher's, with the plan's variables set or replaced.
std::vector<std::string> child_environment(const std::map<std::string, std::string>& changes) {
    std::vector<std::string> result;
    for (char** entry = environ; *entry; ++entry) {
        const char* eq = std::strchr(*entry, '=');
        const std::string name =
            eq ? std::string(*entry, static_cast<std::size_t>(eq - *entry)) : std::string(*entry);
        if (!changes.count(name)) result.emplace_back(*entry);
    }
    for (const auto& [name, value] : changes) result.push_back(name + "=" + value);
    return result;
}

std::vector<char*> c_pointers(std::vector<std::string>& strings) {
    std::vector<char*> pointers;
    for (auto& s : strings) pointers.push_back(s.data());
    pointers.push_back(nullptr);
    return pointers;
}

void close_pair(int fds[2]) {
    if (fds[0] >= 0) close(fds[0]);
    if (fds[1] >= 0) close(fds[1]);
}

}  // namespace

MemoryPolicyChoice choose_memory_policy(const LaunchPlan& plan) {
    MemoryPolicyChoice choice;
    if (plan.bind != BindMethod::kDirect) return choice;
    std::set<std::vector<int>> node_sets;
    for (const auto& instance : plan.instances)
        if (!instance.memory_nodes.empty()) node_sets.insert(instance.memory_nodes);
    if (node_sets.empty()) return choice;

    if (numa_available() < 0) {
        choice.warning =
            "this system does not support a NUMA memory policy; "
            "instances run without memory binding";
        return choice;
    }

    // The child reports the first errno of MPOL_BIND and of MPOL_PREFERRED (0 = accepted).
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        choice.policy = MemoryPolicy::kBind;  // cannot probe: let the children try
        return choice;
    }
    const pid_t pid = fork();
    if (pid == 0) {
        int errors[2] = {0, 0};
        for (const auto& nodes : node_sets) {
            const NodeMask mask(nodes);
            if (set_mempolicy(MPOL_BIND, mask.words.data(), mask.maxnode) != 0 && !errors[0])
                errors[0] = errno;
            const NodeMask first(first_node(nodes));
            if (set_mempolicy(MPOL_PREFERRED, first.words.data(), first.maxnode) != 0 && !errors[1])
                errors[1] = errno;
        }
        write_all(fds[1], reinterpret_cast<const char*>(errors), sizeof errors);
        _exit(0);
    }
    close(fds[1]);
    int errors[2] = {0, 0};
    bool answered = false;
    if (pid > 0) {
        ssize_t n;
        do n = read(fds[0], errors, sizeof errors);
        while (n < 0 && errno == EINTR);
        answered = n == static_cast<ssize_t>(sizeof errors);
        while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
        }
    }
    close(fds[0]);

    if (!answered || errors[0] == 0) {
        choice.policy = MemoryPolicy::kBind;
    } else if (errors[1] == 0) {
        choice.policy = MemoryPolicy::kPreferred;
        choice.warning = std::string("NUMA memory binding refused (set_mempolicy: ") +
                         std::strerror(errors[0]) +
                         "); instances prefer their first node's memory instead";
    } else {
        choice.warning = std::string("NUMA memory policy refused (set_mempolicy: ") +
                         std::strerror(errors[0]) + "); instances run without memory binding";
    }
    return choice;
}

SpawnedInstance spawn_instance(const InstanceLaunch& instance, const SpawnSettings& settings) {
    SpawnedInstance result;
    if (instance.argv.empty()) {
        result.error = "instance " + std::to_string(instance.index) + " has no command";
        return result;
    }

    // Everything the child needs is prepared here, so that between fork and exec it only
    // makes system calls.
    std::vector<std::string> argv_strings = instance.argv;
    std::vector<char*> argv = c_pointers(argv_strings);
    std::vector<std::string> env_strings = child_environment(instance.env);
    std::vector<char*> envp = c_pointers(env_strings);
    const std::string exec_error = "ipexrun: cannot execute '" + instance.argv[0] + "': ";
    const std::string bind_error = "ipexrun: instance " + std::to_string(instance.index) +
                                   ": cannot bind to CPUs " +
                                   affinity::format_id_list(instance.cpus) + ": ";
    const bool direct = settings.bind == BindMethod::kDirect;
    int max_cpu = 0;
    for (int cpu : instance.cpus) max_cpu = std::max(max_cpu, cpu);
    cpu_set_t* cpus = CPU_ALLOC(max_cpu + 1);
    const std::size_t cpus_size = CPU_ALLOC_SIZE(max_cpu + 1);
    CPU_ZERO_S(cpus_size, cpus);
    for (int cpu : instance.cpus)
        if (cpu >= 0) CPU_SET_S(cpu, cpus_size, cpus);
    const MemoryPolicy memory =
        instance.memory_nodes.empty() ? MemoryPolicy::kNone : settings.memory;
    const NodeMask all_nodes(instance.memory_nodes);
    const NodeMask preferred_node(first_node(instance.memory_nodes));
    const pid_t launcher = getpid();
    const long open_max = sysconf(_SC_OPEN_MAX);
    const int max_fd = open_max > 0 && open_max < 65536 ? static_cast<int>(open_max) : 65536;

    int out[2] = {-1, -1};
    int err[2] = {-1, -1};
    int null_fd = -1;
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
        (settings.stdin_null && (null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)) {
        result.error = std::string("cannot start instance ") + std::to_string(instance.index) +
                       ": " + std::strerror(errno);
        close_pair(out);
        close_pair(err);
        CPU_FREE(cpus);
        return result;
    }

    // Signals stay blocked across fork until the child has reset the launcher's handlers,
    // so that a signal sent to a new instance never runs the launcher's handler in it.
    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);
    const pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != launcher) _exit(1);  // the launcher died before prctl took effect
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
        // Only stdin/stdout/stderr go on, as with Python's Popen in the peers: the launcher's
        // log files (spdlog's is not close-on-exec) and pipes are none of the program's business.
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < max_fd; ++fd) close(fd);
        if (direct) {
            if (sched_setaffinity(0, cpus_size, cpus) != 0)
                write_error_and_exit(bind_error, errno, 126);
            // Refusals were detected and reported once by choose_memory_policy.
            apply_memory_policy(memory, all_nodes, preferred_node);
        }
        if (settings.signals) {
            settings.signals->restore_in_child();
        } else {
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, nullptr);
        }
        environ = envp.data();
        execvp(argv[0], argv.data());
        const int error = errno;
        write_error_and_exit(exec_error, error, error == ENOENT || error == ENOTDIR ? 127 : 126);
    }
    const int fork_error = errno;
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    CPU_FREE(cpus);
    close(out[1]);
    close(err[1]);
    if (null_fd >= 0) close(null_fd);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        result.error = std::string("cannot start instance ") + std::to_string(instance.index) +
                       ": fork: " + std::strerror(fork_error);
        return result;
    }
    setpgid(pid, pid);  // also here, so the group exists before anyone signals it
    result.pid = pid;
    result.stdout_fd = out[0];
    result.stderr_fd = err[0];
    return result;
}

}  // namespace ipex::launcher
