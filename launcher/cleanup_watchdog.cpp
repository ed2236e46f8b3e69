#include "cleanup_watchdog.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstddef>

namespace ipex::launcher {

namespace {

// Messages are ints: +group = watch it, -group = forget it, 0 = the launcher ended normally.
constexpr int kDone = 0;
constexpr std::size_t kStackBytes = 64 * 1024;
constexpr std::size_t kSpareSlots = 256;   // for groups watched after start()
constexpr std::size_t kSweepSlots = 4096;  // processes found under the instances at the end

// What the watchdog owns. It lives in the mapping that also holds the watchdog's stack; the
// launcher does not touch it while the watchdog runs.
struct WatchdogState {
    int read_fd;
    std::size_t count;
    std::size_t capacity;
    pid_t* sweep;     // kSweepSlots entries, after the groups
    pid_t groups[1];  // really `capacity` entries
};

std::size_t mapping_bytes(std::size_t capacity) {
    return kStackBytes + sizeof(WatchdogState) + (capacity + kSweepSlots) * sizeof(pid_t);
}

#if defined(__x86_64__)
#define IPEX_WATCHDOG_SHARES_MEMORY 1

// The watchdog shares the launcher's memory but not its thread: it may not touch errno,
// malloc or anything else that belongs to the launcher's thread, so it makes system calls
// directly and sees errors as negative results.
__attribute__((always_inline, no_sanitize("address", "undefined"))) inline long raw_syscall(
    long number, long a = 0, long b = 0, long c = 0) {
    long result;
    asm volatile("syscall"
                 : "=a"(result)
                 : "a"(number), "D"(a), "S"(b), "d"(c)
                 : "rcx", "r11", "memory");
    return result;
}
#else
// Forked: the watchdog has memory of its own, errno included.
long raw_syscall(long number, long a = 0, long b = 0, long c = 0) {
    const long result = syscall(number, a, b, c);
    return result < 0 ? -errno : result;
}
#endif

// "/proc/<pid>/task/<pid>/children" into `path`, without libc.
__attribute__((no_sanitize("address", "undefined"))) void children_path(pid_t pid, char* path) {
    char digits[16];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(pid); n == 0 || v > 0; v /= 10)
        digits[n++] = static_cast<char>('0' + v % 10);
    const char* parts[] = {"/proc/", nullptr, "/task/", nullptr, "/children"};
    int at = 0;
    for (const char* part : parts) {
        if (part == nullptr)
            for (int k = n - 1; k >= 0; --k) path[at++] = digits[k];
        else
            while (*part) path[at++] = *part++;
    }
    path[at] = '\0';
}

// Every process below the watched instances, stopped so that none forks meanwhile, then
// killed: a helper that left the instance's group (setsid) is still an instance's
// descendant as long as its parent lives. Children of threads other than a process's main
// thread are not listed by the kernel there and are missed.
__attribute__((no_sanitize("address", "undefined"))) void kill_descendants(WatchdogState* state) {
    std::size_t found = 0;
    for (std::size_t i = 0; i < state->count && found < kSweepSlots; ++i)
        state->sweep[found++] = state->groups[i];
    char path[64];
    char text[4096];
    for (std::size_t next = 0; next < found; ++next) {
        raw_syscall(SYS_kill, state->sweep[next], SIGSTOP);
        children_path(state->sweep[next], path);
        const long fd =
            raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        long pid = 0;
        for (;;) {
            const long n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(text), sizeof text);
            if (n <= 0) break;
            for (long k = 0; k < n; ++k) {
                if (text[k] >= '0' && text[k] <= '9') {
                    pid = pid * 10 + (text[k] - '0');
                } else if (pid > 0) {
                    if (found < kSweepSlots) state->sweep[found++] = static_cast<pid_t>(pid);
                    pid = 0;
                }
            }
        }
        if (pid > 0 && found < kSweepSlots) state->sweep[found++] = static_cast<pid_t>(pid);
        raw_syscall(SYS_close, fd);
    }
    for (std::size_t i = 0; i < found; ++i) raw_syscall(SYS_kill, state->sweep[i], SIGKILL);
}

__attribute__((no_sanitize("address", "undefined"))) int watchdog_main(void* arg) {
    auto* state = static_cast<WatchdogState*>(arg);
    // Every signal stays blocked (the launcher blocked them before clone): a Ctrl-C meant for
    // the launcher, or a kill of its group, must not take the watchdog along, and no launcher
    // handler may ever run here. Its own group keeps it out of the launcher's job.
    raw_syscall(SYS_setpgid, 0, 0);
    // Holding no other descriptor: a reader of the launcher's output must not wait for us.
    const int fd = state->read_fd;
    if (fd > 0) raw_syscall(SYS_close_range, 0, fd - 1, 0);
    raw_syscall(SYS_close_range, fd + 1, ~0U, 0);

    for (;;) {
        int message = 0;
        const long n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(&message), sizeof message);
        if (n == -EINTR) continue;
        if (n != static_cast<long>(sizeof message)) break;  // end of file: the launcher is gone
        if (message == kDone) raw_syscall(SYS_exit, 0);
        if (message > 0 && state->count < state->capacity) state->groups[state->count++] = message;
        if (message < 0)
            for (std::size_t i = 0; i < state->count; ++i)
                if (state->groups[i] == -message) state->groups[i] = state->groups[--state->count];
    }
    kill_descendants(state);
    for (std::size_t i = 0; i < state->count; ++i)
        raw_syscall(SYS_kill, -state->groups[i], SIGKILL);
    raw_syscall(SYS_exit, 0);
    return 0;
}

}  // namespace

// The watchdog is a process of its own (so it outlives a SIGKILLed launcher) that shares the
// launcher's memory (CLONE_VM): no page tables to copy and no copy-on-write faults, which a
// fork costs here (~3 ms of a 15 ms launch in a VM). Elsewhere than x86-64 it is forked.
void CleanupWatchdog::start() {
    if (pid_ > 0) return;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    const std::size_t capacity = pending_.size() + kSpareSlots;
    const std::size_t bytes = mapping_bytes(capacity);
    void* mapping =
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapping == MAP_FAILED) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    auto* state = reinterpret_cast<WatchdogState*>(static_cast<char*>(mapping) + kStackBytes);
    state->read_fd = fds[0];
    state->count = 0;
    state->capacity = capacity;
    state->sweep = state->groups + capacity;

    sigset_t all, previous;
    sigfillset(&all);
    sigprocmask(SIG_BLOCK, &all, &previous);  // no launcher handler may run in the child
#ifdef IPEX_WATCHDOG_SHARES_MEMORY
    const pid_t pid =
        clone(watchdog_main, static_cast<char*>(mapping) + kStackBytes, CLONE_VM | SIGCHLD, state);
#else
    const pid_t pid = fork();
    if (pid == 0) watchdog_main(state);
#endif
    sigprocmask(SIG_SETMASK, &previous, nullptr);
    close(fds[0]);
    if (pid < 0) {
        close(fds[1]);
        munmap(mapping, bytes);
        return;
    }
    pid_ = pid;
    write_fd_ = fds[1];
    mapping_ = mapping;
    mapping_bytes_ = bytes;
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
    munmap(mapping_, mapping_bytes_);  // the watchdog has exited: nobody runs on it any more
    mapping_ = nullptr;
}

}  // namespace ipex::launcher
