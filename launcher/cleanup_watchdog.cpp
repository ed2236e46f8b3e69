#include "cleanup_watchdog.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <vector>

namespace ipex::launcher {

namespace {

// Messages are ints: +group = watch it, -group = forget it, 0 = the launcher ended normally.
constexpr int kDone = 0;

[[noreturn]] void watchdog_main(int read_fd) {
    // Its own process group and deaf to the usual stop signals: a Ctrl-C meant for the
    // launcher, or a kill of the launcher's group, must not take the watchdog along.
    setpgid(0, 0);
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) sigaction(sig, &ignore, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Holding no other descriptor: a reader of the launcher's output must not wait for us.
    dup2(read_fd, STDIN_FILENO);
    close_range(STDIN_FILENO + 1, ~0U, 0);

    std::vector<pid_t> groups;
    for (;;) {
        int message = 0;
        const ssize_t n = read(STDIN_FILENO, &message, sizeof message);
        if (n < 0 && errno == EINTR) continue;
        if (n == static_cast<ssize_t>(sizeof message)) {
            if (message == kDone) _exit(0);
            if (message > 0) groups.push_back(message);
            if (message < 0)
                groups.erase(std::remove(groups.begin(), groups.end(), -message), groups.end());
            continue;
        }
        break;  // end of file (or a broken pipe): the launcher is gone
    }
    for (pid_t group : groups) kill(-group, SIGKILL);
    _exit(0);
}

}  // namespace

void CleanupWatchdog::start() {
    if (pid_ > 0) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);  // no launcher handler may run in the child
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[1]);
        watchdog_main(fds[0]);
    }
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        return;
    }
    pid_ = pid;
    write_fd_ = fds[1];
    for (pid_t group : pending_) send(group);
    pending_.clear();
}

CleanupWatchdog::~CleanupWatchdog() {
    finish();
}

void CleanupWatchdog::send(int message) {
    if (write_fd_ < 0) return;
    ssize_t n;
    do n = write(write_fd_, &message, sizeof message);  // atomic: far below PIPE_BUF
    while (n < 0 && errno == EINTR);
}

void CleanupWatchdog::watch(pid_t group) {
    if (group <= 0) return;
    if (pid_ > 0)
        send(group);
    else
        pending_.push_back(group);
}

void CleanupWatchdog::forget(pid_t group) {
    if (group <= 0) return;
    pending_.erase(std::remove(pending_.begin(), pending_.end(), group), pending_.end());
    if (pid_ > 0) send(-group);
}

void CleanupWatchdog::finish() {
    if (pid_ <= 0) return;
    send(kDone);
    close(write_fd_);
    write_fd_ = -1;
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
}

}  // namespace ipex::launcher
