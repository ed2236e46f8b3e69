#include "spawner.h"

#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "exec_failure.h"
#include "ipex/affinity/cpu_list.h"
#include "ipex/affinity/user_text.h"
#include "orphan_sweep.h"
#include "path_search.h"
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

// Writes all of a buffer, or gives up.
void write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
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

// The file execvp would run for `name`, found once in the launcher rather than by every
// child trying each PATH entry in turn; empty when not found (the child's execvpe then
// reports the error exactly as it would have). execvp's PATH is the launcher's own.
std::string find_in_path(const std::string& name) {
    if (name.empty() || name.find('/') != std::string::npos) return name;
    const char* path = std::getenv("PATH");
    return search_path(path ? path : "/bin:/usr/bin", name).value_or("");
}

// The stack the children run on between clone and exec. CLONE_VFORK returns only once the
// child has exec'd or exited, so one stack serves every spawn; mapped untouched so only the
// few pages a child uses are ever faulted in (zero-filling it cost ~0.5 ms a spawn here).
char* child_stack_top() {
    constexpr std::size_t kChildStack = 256 * 1024;
    static char* top = [] {
        void* base = mmap(nullptr, kChildStack, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0);
        return base == MAP_FAILED ? nullptr : static_cast<char*>(base) + kChildStack;
    }();
    return top;
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

    // Tried on this thread and undone at once: cheaper than a throwaway child, and the
    // policy is per thread, so nothing else in the launcher sees it meanwhile.
    int original_mode = MPOL_DEFAULT;
    std::vector<unsigned long> original_mask(
        static_cast<std::size_t>(numa_num_possible_nodes()) / (8 * sizeof(unsigned long)) + 1, 0);
    const unsigned long original_maxnode = original_mask.size() * 8 * sizeof(unsigned long);
    const bool can_restore =
        get_mempolicy(&original_mode, original_mask.data(), original_maxnode, nullptr, 0) == 0;
    int errors[2] = {0, 0};
    for (const auto& nodes : node_sets) {
        const NodeMask mask(nodes);
        if (set_mempolicy(MPOL_BIND, mask.words.data(), mask.maxnode) != 0 && !errors[0])
            errors[0] = errno;
        const NodeMask first(first_node(nodes));
        if (set_mempolicy(MPOL_PREFERRED, first.words.data(), first.maxnode) != 0 && !errors[1])
            errors[1] = errno;
    }
    if (can_restore)
        set_mempolicy(original_mode, original_mode == MPOL_DEFAULT ? nullptr : original_mask.data(),
                      original_mode == MPOL_DEFAULT ? 0 : original_maxnode);
    else
        set_mempolicy(MPOL_DEFAULT, nullptr, 0);

    if (errors[0] == 0) {
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

namespace {

// What the child of spawn_instance needs between clone and exec, prepared by the parent.
// The child shares the parent's memory (CLONE_VM) until exec, so it only reads this and
// makes system calls; the one thing it writes is why it could not get to exec.
struct ChildStart {
    pid_t launcher = 0;
    int stdout_fd = -1;
    int stderr_fd = -1;
    int stdin_fd = -1;   // -1: keep the launcher's
    int report_fd = -1;  // -1: none; else it becomes fd 3
    int max_fd = 0;
    bool direct = false;
    cpu_set_t* cpus = nullptr;
    std::size_t cpus_size = 0;
    MemoryPolicy memory = MemoryPolicy::kNone;
    const NodeMask* all_nodes = nullptr;
    const NodeMask* preferred_node = nullptr;
    const SignalWatch* signals = nullptr;
    const char* program = nullptr;  // argv[0] found in PATH, or null to let execvpe search
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    // Written by the child when it gives up before exec.
    enum class Failure { kNone, kBind, kExec } failure = Failure::kNone;
    int error = 0;
};

int child_main(void* arg) {
    auto* start = static_cast<ChildStart*>(arg);
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != start->launcher) _exit(1);  // the launcher died before prctl took effect
    dup2(start->stdout_fd, STDOUT_FILENO);
    dup2(start->stderr_fd, STDERR_FILENO);
    if (start->stdin_fd >= 0) dup2(start->stdin_fd, STDIN_FILENO);
    // Only stdin/stdout/stderr go on, as with Python's Popen in the peers: the launcher's
    // log files (spdlog's is not close-on-exec) and pipes are none of the program's business.
    // The benchmark report socket, when there is one, is the exception: it becomes fd 3.
    int first_closed = 3;
    if (start->report_fd >= 0) {
        if (start->report_fd == kReportFd)
            fcntl(kReportFd, F_SETFD, 0);
        else
            dup2(start->report_fd, kReportFd);  // dup2 clears close-on-exec
        first_closed = kReportFd + 1;
    }
    if (close_range(static_cast<unsigned>(first_closed), ~0U, 0) != 0)
        for (int fd = first_closed; fd < start->max_fd; ++fd) close(fd);
    if (start->direct) {
        if (sched_setaffinity(0, start->cpus_size, start->cpus) != 0) {
            start->error = errno;
            start->failure = ChildStart::Failure::kBind;
            _exit(126);
        }
        // Refusals were detected and reported once by choose_memory_policy.
        apply_memory_policy(start->memory, *start->all_nodes, *start->preferred_node);
    }
    if (start->signals) {
        start->signals->restore_in_child();
    } else {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
    }
    if (start->program) execve(start->program, start->argv, start->envp);
    // Not found, or ENOEXEC (a script without #!): execvpe searches and falls back to sh.
    if (!start->program || errno == ENOEXEC) execvpe(start->argv[0], start->argv, start->envp);
    start->error = errno;
    start->failure = ChildStart::Failure::kExec;
    _exit(start->error == ENOENT || start->error == ENOTDIR ? 127 : 126);
}

}  // namespace

SpawnedInstance spawn_instance(const InstanceLaunch& instance, const SpawnSettings& settings) {
    SpawnedInstance result;
    if (instance.argv.empty()) {
        result.error = "instance " + std::to_string(instance.index) + " has no command";
        return result;
    }
    char* const stack_top = child_stack_top();
    if (!stack_top) {
        result.error = "cannot start instance " + std::to_string(instance.index) +
                       ": no memory for the child's stack";
        return result;
    }

    std::vector<std::string> argv_strings = instance.argv;
    std::vector<char*> argv = c_pointers(argv_strings);
    const std::string program = find_in_path(instance.argv[0]);
    std::map<std::string, std::string> env_changes = instance.env;
    if (!settings.run_id.empty()) env_changes[kRunIdVariable] = settings.run_id;
    std::vector<std::string> env_strings = child_environment(env_changes);
    std::vector<char*> envp = c_pointers(env_strings);
    int max_cpu = 0;
    for (int cpu : instance.cpus) max_cpu = std::max(max_cpu, cpu);
    cpu_set_t* cpus = CPU_ALLOC(max_cpu + 1);
    const std::size_t cpus_size = CPU_ALLOC_SIZE(max_cpu + 1);
    CPU_ZERO_S(cpus_size, cpus);
    for (int cpu : instance.cpus)
        if (cpu >= 0) CPU_SET_S(cpu, cpus_size, cpus);
    const NodeMask all_nodes(instance.memory_nodes);
    const NodeMask preferred_node(first_node(instance.memory_nodes));
    const long open_max = sysconf(_SC_OPEN_MAX);

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

    ChildStart start;
    start.launcher = getpid();
    start.stdout_fd = out[1];
    start.stderr_fd = err[1];
    start.stdin_fd = null_fd;
    start.report_fd = settings.report_fd;
    start.max_fd = open_max > 0 && open_max < 65536 ? static_cast<int>(open_max) : 65536;
    start.direct = settings.bind == BindMethod::kDirect;
    start.cpus = cpus;
    start.cpus_size = cpus_size;
    start.memory = instance.memory_nodes.empty() ? MemoryPolicy::kNone : settings.memory;
    start.all_nodes = &all_nodes;
    start.preferred_node = &preferred_node;
    start.signals = settings.signals;
    start.program = program.empty() ? nullptr : program.c_str();
    start.argv = argv.data();
    start.envp = envp.data();

    // CLONE_VM | CLONE_VFORK, as posix_spawn does: no copy of the launcher's page tables
    // (a fork costs ~1.5 ms here, this ~0.3 ms), and the launcher waits until the child
    // has exec'd or failed. Signals stay blocked across the clone until the child has reset
    // the launcher's handlers, so a signal meant for a new instance never runs them in it.
    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);
    const pid_t pid = clone(child_main, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &start);
    const int clone_error = errno;
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    CPU_FREE(cpus);
    if (pid > 0 && start.failure != ChildStart::Failure::kNone) {
        // The child has exited; its reason goes where its own output would have gone.
        const std::string message =
            (start.failure == ChildStart::Failure::kBind
                 ? "ipexrun: instance " + std::to_string(instance.index) +
                       ": cannot bind to CPUs " + affinity::format_id_list(instance.cpus) + ": " +
                       std::strerror(start.error)
                 : "ipexrun: cannot execute " + affinity::quote_text(instance.argv[0]) + ": " +
                       exec_failure_reason(program, start.error)) +
            "\n";
        write_all(err[1], message.data(), message.size());
    }
    close(out[1]);
    close(err[1]);
    if (null_fd >= 0) close(null_fd);
    if (pid < 0) {
        close(out[0]);
        close(err[0]);
        result.error = std::string("cannot start instance ") + std::to_string(instance.index) +
                       ": clone: " + std::strerror(clone_error);
        return result;
    }
    setpgid(pid, pid);  // also here, so the group exists before anyone signals it
    result.pid = pid;
    result.stdout_fd = out[0];
    result.stderr_fd = err[0];
    return result;
}

}  // namespace ipex::launcher
