#include "host_probe.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <set>

#include "mpi_command.h"
#include "path_search.h"

extern char** environ;

namespace ipex::launcher {
namespace {

std::string address_text(const sockaddr_storage& s) {
    char text[INET6_ADDRSTRLEN] = {};
    if (s.ss_family == AF_INET)
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(s).sin_addr, text, sizeof text);
    else if (s.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(s).sin6_addr, text, sizeof text);
    return text;
}

// What a probe's child needs, prepared before the fork.
struct ProbeExec {
    std::string path;
    std::vector<std::string> args;
    std::vector<char*> argv;
    int status_fd = -1;  // where the child writes the agent's wait status
};

// Runs in a forked child, which starts the agent as its own child and reports the agent's
// wait status through a pipe: the supervisor may reap this child itself (its waitpid(-1)
// takes every child), and the answer still arrives. Only async-signal-safe calls from here
// on (the launcher may have other threads).
[[noreturn]] void run_probe(const ProbeExec* exec) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setpgid(0, 0);  // killable as a whole, with the agent and whatever it starts
    const int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        for (int fd = 0; fd <= 2; ++fd) dup2(null, fd);
        if (null > 2) close(null);
    }
    const pid_t agent = vfork();
    if (agent == 0) {
        execve(exec->path.c_str(), exec->argv.data(), environ);
        _exit(127);
    }
    int status = 127 << 8;
    if (agent > 0)
        while (waitpid(agent, &status, 0) < 0 && errno == EINTR) {
        }
    while (write(exec->status_fd, &status, sizeof status) < 0 && errno == EINTR) {
    }
    _exit(0);
}

// Starts one probe; its pid, or -1 with errno set. `status_fd` gets the agent's wait status.
pid_t spawn_probe(ProbeExec& exec) {
    const char* path_list = std::getenv("PATH");
    const auto found = exec.args[0].find('/') == std::string::npos
                           ? search_path(path_list ? path_list : "/usr/bin:/bin", exec.args[0])
                           : std::optional<std::string>(exec.args[0]);
    if (!found || !is_executable_file(*found)) {
        errno = ENOENT;
        return -1;
    }
    exec.path = *found;
    for (auto& a : exec.args) exec.argv.push_back(a.data());
    exec.argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) run_probe(&exec);
    return pid;
}

struct Probe {
    std::string host;
    pid_t pid = -1;
    int status_fd = -1;  // read end; -1 once the probe has been collected
};

std::string exit_text(int status) {
    return WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                             : "killed by signal " + std::to_string(WTERMSIG(status));
}

std::string duration_text(std::chrono::milliseconds time) {
    return time.count() % 1000 == 0 ? std::to_string(time.count() / 1000) + " s"
                                    : std::to_string(time.count()) + " ms";
}

}  // namespace

std::vector<sockaddr_storage> resolve_host(const std::string& host) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::vector<sockaddr_storage> out;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0) return out;
    for (addrinfo* a = found; a; a = a->ai_next) {
        sockaddr_storage s{};
        std::memcpy(&s, a->ai_addr, a->ai_addrlen);
        out.push_back(s);
    }
    freeaddrinfo(found);
    return out;
}

bool is_local_address(const std::string& host) {
    std::set<std::string> mine;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) == 0) {
        for (ifaddrs* i = list; i; i = i->ifa_next) {
            if (!i->ifa_addr ||
                (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
                continue;
            sockaddr_storage s{};
            std::memcpy(
                &s, i->ifa_addr,
                i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
            mine.insert(address_text(s));
        }
        freeifaddrs(list);
    }
    for (const auto& a : resolve_host(host)) {
        const std::string text = address_text(a);
        if (text.rfind("127.", 0) == 0 || text == "::1" || mine.count(text)) return true;
    }
    return false;
}

std::vector<std::string> remote_hosts(const std::vector<std::string>& hosts,
                                      const std::string& hostfile) {
    std::vector<std::string> remote;
    for (const auto& host : hosts) {
        if (resolve_host(host).empty())
            throw DistributedError("host '" + host + "' in --hostfile " + hostfile +
                                   " does not resolve to an address");
        if (!is_local_address(host)) remote.push_back(host);
    }
    return remote;
}

std::string probe_hosts(const std::vector<std::string>& hosts, const std::string& agent,
                        std::chrono::milliseconds timeout) {
    const std::string through = agent.empty() ? "ssh" : agent;
    std::vector<Probe> probes;
    std::string failure;
    const auto fail = [&](const Probe& p, const std::string& why) {
        if (failure.empty())
            failure = "host '" + p.host + "' does not answer through " + through + " (" + why + ")";
    };
    // Collects a probe that has reported or is to be given up on.
    const auto collect = [&](Probe& p, bool give_up) {
        int status = 0;
        const bool reported = !give_up && read(p.status_fd, &status, sizeof status) ==
                                              static_cast<ssize_t>(sizeof status);
        if (give_up) {  // the group, and the child itself in case it has not made it yet
            kill(-p.pid, SIGKILL);
            kill(p.pid, SIGKILL);
        }
        // ECHILD: the supervisor has reaped it already.
        while (waitpid(p.pid, nullptr, 0) < 0 && errno == EINTR) {
        }
        close(p.status_fd);
        p.status_fd = -1;
        if (!reported)
            fail(p, give_up ? "no answer within " + duration_text(timeout)
                            : "the probe ended without a status");
        else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fail(p, exit_text(status));
    };
    for (const auto& host : hosts) {
        ProbeExec exec;
        exec.args =
            agent.empty()
                ? std::vector<std::string>{"ssh", "-o",  "BatchMode=yes", "-o", "ConnectTimeout=5",
                                           host,  "true"}
                : std::vector<std::string>{agent, host, "true"};
        int status_pipe[2];
        if (pipe2(status_pipe, O_CLOEXEC) != 0) {
            failure = std::string("cannot probe the other hosts: ") + std::strerror(errno);
            break;
        }
        exec.status_fd = status_pipe[1];
        Probe p;
        p.host = host;
        p.pid = spawn_probe(exec);
        const int error = errno;
        close(status_pipe[1]);
        p.status_fd = status_pipe[0];
        if (p.pid < 0) {
            close(p.status_fd);
            failure =
                "cannot run " + exec.args[0] + " to reach the other hosts: " + std::strerror(error);
            break;
        }
        probes.push_back(p);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::vector<pollfd> fds;
    std::vector<Probe*> waiting;
    for (;;) {
        fds.clear();
        waiting.clear();
        for (auto& p : probes)
            if (p.status_fd >= 0) {
                fds.push_back(pollfd{p.status_fd, POLLIN, 0});
                waiting.push_back(&p);
            }
        if (waiting.empty()) break;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (!failure.empty() || left.count() <= 0) {  // the first failure is the answer
            for (Probe* p : waiting) collect(*p, true);
            break;
        }
        if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR)
            break;
        for (std::size_t i = 0; i < fds.size(); ++i)
            if (fds[i].revents) collect(*waiting[i], false);
    }
    for (auto& p : probes)
        if (p.status_fd >= 0) collect(p, true);
    return failure;
}

}  // namespace ipex::launcher
