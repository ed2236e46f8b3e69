#include "signals.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ipex::launcher {

namespace {

const int kWatchedSignals[SignalWatch::kCount] = {SIGINT,  SIGTERM, SIGHUP, SIGTSTP,
                                                  SIGCONT, SIGCHLD, SIGPIPE};

int g_write_fd = -1;                           // the handler's state: where it reports,
volatile std::sig_atomic_t g_stop_signal = 0;  // and whether a stop was asked for

void on_signal(int sig) {
    const int saved_errno = errno;
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) g_stop_signal = 1;
    const unsigned char byte = static_cast<unsigned char>(sig);
    // The pipe is non-blocking: when it is full, enough wake-ups are already pending,
    // except that the signal number is lost; SIGCHLD is re-derived from waitpid anyway.
    ssize_t ignored = write(g_write_fd, &byte, 1);
    (void)ignored;
    errno = saved_errno;
}

}  // namespace

SignalWatch::SignalWatch() {
    if (g_write_fd != -1) throw std::logic_error("SignalWatch: only one may exist at a time");
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        throw std::runtime_error(std::string("cannot create a pipe: ") + std::strerror(errno));
    read_fd_ = fds[0];
    write_fd_ = fds[1];
    g_write_fd = write_fd_;
    g_stop_signal = 0;

    for (int i = 0; i < kCount; ++i) {
        const int sig = kWatchedSignals[i];
        sigaction(sig, nullptr, &saved_[i]);
        const bool forwardable = sig != SIGCHLD && sig != SIGPIPE && sig != SIGCONT;
        if (forwardable && saved_[i].sa_handler == SIG_IGN) continue;
        struct sigaction action {};
        sigemptyset(&action.sa_mask);
        if (sig == SIGPIPE) {
            action.sa_handler = SIG_IGN;
        } else {
            action.sa_handler = on_signal;
            action.sa_flags = SA_RESTART | (sig == SIGCHLD ? SA_NOCLDSTOP : 0);
        }
        sigaction(sig, &action, nullptr);
    }
    // A launcher started with these signals blocked would never hear them.
    sigset_t set;
    sigemptyset(&set);
    for (int sig : kWatchedSignals) sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

SignalWatch::~SignalWatch() {
    for (int i = 0; i < kCount; ++i) sigaction(kWatchedSignals[i], &saved_[i], nullptr);
    g_write_fd = -1;
    close(read_fd_);
    close(write_fd_);
}

bool stop_signal_arrived() {
    return g_stop_signal != 0;
}

std::vector<int> SignalWatch::take() {
    std::vector<int> signals;
    unsigned char buffer[64];
    for (;;) {
        const ssize_t n = read(read_fd_, buffer, sizeof buffer);
        if (n > 0) {
            signals.insert(signals.end(), buffer, buffer + n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;  // EAGAIN: drained
    }
    return signals;
}

void SignalWatch::restore_in_child() const {
    // Ignored stays ignored (exec keeps SIG_IGN); anything else becomes the default, which
    // is what exec would make of a handler, but already now, before signals are unblocked.
    for (int i = 0; i < kCount; ++i) {
        struct sigaction action {};
        sigemptyset(&action.sa_mask);
        action.sa_handler = saved_[i].sa_handler == SIG_IGN ? SIG_IGN : SIG_DFL;
        sigaction(kWatchedSignals[i], &action, nullptr);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

void signal_group(pid_t group, int sig) {
    if (group > 0) kill(-group, sig);
}

OrphanAdoption::OrphanAdoption() {
    prctl(PR_GET_CHILD_SUBREAPER, &previous_);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
}

OrphanAdoption::~OrphanAdoption() {
    prctl(PR_SET_CHILD_SUBREAPER, previous_);
}

namespace {

// The launcher's living children, after reaping the ones that have exited. Needs
// CONFIG_PROC_CHILDREN (every distribution kernel has it); the launcher is single-threaded,
// so its main thread's list is complete.
std::vector<pid_t> living_children() {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    std::ifstream file("/proc/self/task/" + std::to_string(getpid()) + "/children");
    std::vector<pid_t> children;
    for (pid_t pid; file >> pid;) children.push_back(pid);
    return children;
}

}  // namespace

int end_adopted_children(std::chrono::milliseconds wait, std::chrono::milliseconds grace,
                         const std::function<bool()>& kill_now) {
    using Clock = std::chrono::steady_clock;
    const auto term_at = Clock::now() + wait;
    std::optional<Clock::time_point> kill_at;
    std::set<pid_t> signalled;
    // Ending a child can hand the launcher that child's own children: go on until none is left.
    for (std::vector<pid_t> children; !(children = living_children()).empty();) {
        const auto now = Clock::now();
        if (kill_now && kill_now() && (!kill_at || *kill_at > now)) kill_at = now;
        for (pid_t pid : children) {
            // A helper that made itself a group (or session) leader takes its group along.
            const pid_t target = getpgid(pid) == pid ? -pid : pid;
            if (kill_at && now >= *kill_at) {
                kill(target, SIGKILL);
            } else if (now >= term_at && signalled.count(pid) == 0) {
                kill(target, SIGTERM);
                kill(target, SIGCONT);
            } else {
                continue;
            }
            signalled.insert(pid);
            if (!kill_at) kill_at = now + grace;
        }
        // A child that cannot be signalled (EPERM) and never exits would keep this loop
        // going; SIGKILL time is the last chance it gets.
        if (kill_at && now >= *kill_at + wait) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return static_cast<int>(signalled.size());
}

std::string signal_name(int sig) {
    if (const char* abbrev = sigabbrev_np(sig)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(sig);
}

}  // namespace ipex::launcher
