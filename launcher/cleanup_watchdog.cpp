#include "cleanup_watchdog.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <new>

#include "orphan_sweep.h"

namespace ipex::launcher {

namespace {

// Messages are ints: +group = watch it, -group = forget it, 0 = the launcher ended normally.
constexpr int kDone = 0;
constexpr std::size_t kStackBytes = 64 * 1024;
constexpr std::size_t kSpareSlots = 256;    // for groups watched after start()
constexpr std::size_t kSweepSlots = 4096;   // processes below one process of the run
constexpr std::size_t kKilledSlots = 4096;  // processes of the run killed so far
constexpr long kPauseBetweenPassesNs = 2 * 1000 * 1000;

// What the watchdog owns. It lives in the mapping that also holds the watchdog's stack; the
// launcher does not touch it while the watchdog runs.
struct WatchdogState {
    int read_fd;
    bool has_run_id;
    TextFinder run_id;  // looked for in every environment
    std::size_t count;
    std::size_t capacity;
    std::size_t killed_count;
    pid_t* sweep;     // kSweepSlots entries, after the groups
    pid_t* killed;    // kKilledSlots entries, after those
    pid_t groups[1];  // really `capacity` entries
};

std::size_t mapping_bytes(std::size_t capacity) {
    return kStackBytes + sizeof(WatchdogState) +
           (capacity + kSweepSlots + kKilledSlots) * sizeof(pid_t);
}

#if defined(__x86_64__)
#define IPEX_WATCHDOG_SHARES_MEMORY 1

// The watchdog shares the launcher's memory but not its thread: it may not touch errno,
// malloc or anything else that belongs to the launcher's thread, so it makes system calls
// directly and sees errors as negative results.
__attribute__((always_inline)) IPEX_WATCHDOG_SAFE inline long raw_syscall(long number, long a = 0,
                                                                          long b = 0, long c = 0,
                                                                          long d = 0, long e = 0) {
    long result;
    register long r10 asm("r10") = d;
    register long r8 asm("r8") = e;
    asm volatile("syscall"
                 : "=a"(result)
                 : "a"(number), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
                 : "rcx", "r11", "memory");
    return result;
}
#else
// Forked: the watchdog has memory of its own, errno included.
long raw_syscall(long number, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0) {
    const long result = syscall(number, a, b, c, d, e);
    return result < 0 ? -errno : result;
}
#endif

// The decimal digits of `value`, then `suffix`, written at `out`; returns the end.
IPEX_WATCHDOG_SAFE char* append_number(char* out, unsigned value, const char* suffix) {
    char digits[16];
    int n = 0;
    do digits[n++] = static_cast<char>('0' + value % 10);
    while ((value /= 10) > 0);
    while (n > 0) *out++ = digits[--n];
    while (*suffix) *out++ = *suffix++;
    *out = '\0';
    return out;
}

// A directory entry as getdents64 returns it.
struct DirectoryEntry {
    std::uint64_t inode;
    std::int64_t next;
    unsigned short length;
    unsigned char type;
    char name[1];  // really up to `length`, NUL-terminated
};

// Signals the process `pidfd` stands for (so a pid the kernel has handed on since is never
// hit), or the pid on kernels without pidfds (before 5.3).
IPEX_WATCHDOG_SAFE void signal_process(long pidfd, pid_t pid, int sig) {
    if (pidfd >= 0)
        raw_syscall(SYS_pidfd_send_signal, pidfd, sig, 0, 0);
    else
        raw_syscall(SYS_kill, pid, sig);
}

// Counts a process as killed; 1 if no earlier look had killed it, else 0. When the list is
// full, every process counts as new, which at worst costs passes.
IPEX_WATCHDOG_SAFE std::size_t note_killed(WatchdogState* state, pid_t pid) {
    for (std::size_t i = 0; i < state->killed_count; ++i)
        if (state->killed[i] == pid) return 0;
    if (state->killed_count < kKilledSlots) state->killed[state->killed_count++] = pid;
    return 1;
}

enum class Membership { kOutside, kInside, kUndecided };

// Whether a process belongs to the run: it is the watchdog's own user's and its environment
// holds the run's id. Undecided while it is in the middle of an exec (its environment reads
// as empty for that moment). `proc` is the open /proc directory.
IPEX_WATCHDOG_SAFE Membership membership(WatchdogState* state, long proc, pid_t pid, unsigned uid) {
    char path[32];
    append_number(path, static_cast<unsigned>(pid), "");
    struct statx info;
    if (raw_syscall(SYS_statx, proc, reinterpret_cast<long>(path), 0, STATX_UID,
                    reinterpret_cast<long>(&info)) != 0 ||
        info.stx_uid != uid)
        return Membership::kOutside;
    append_number(path, static_cast<unsigned>(pid), "/environ");
    long fd = raw_syscall(SYS_openat, proc, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Membership::kOutside;
    state->run_id.reset();
    char text[4096];
    long total = 0;
    for (;;) {
        const long n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(text), sizeof text);
        if (n == -EINTR) continue;
        if (n <= 0 || state->run_id.feed(text, static_cast<std::size_t>(n))) break;
        total += n;
    }
    raw_syscall(SYS_close, fd);
    if (state->run_id.found()) return Membership::kInside;
    if (total > 0) return Membership::kOutside;
    append_number(path, static_cast<unsigned>(pid), "/stat");
    fd = raw_syscall(SYS_openat, proc, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Membership::kOutside;
    long n;
    do n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(text), sizeof text);
    while (n == -EINTR);
    raw_syscall(SYS_close, fd);
    return n > 0 && exec_in_progress(text, static_cast<std::size_t>(n)) ? Membership::kUndecided
                                                                        : Membership::kOutside;
}

// Every process below `root` (stopped already), stopped as it is found so that none forks
// or loses its parent meanwhile, then all killed: a helper that dropped the run's variable
// is found this way as long as its parent carries it. Children of threads other than a
// process's main thread are not listed there by the kernel. Returns how many were new.
IPEX_WATCHDOG_SAFE std::size_t kill_below(WatchdogState* state, long proc, pid_t root) {
    pid_t* found = state->sweep;
    std::size_t count = 0;
    found[count++] = root;
    char path[64];
    char text[512];
    int pids[sizeof text / 2 + 1];
    for (std::size_t next = 0; next < count; ++next) {
        const auto parent = static_cast<unsigned>(found[next]);
        append_number(append_number(path, parent, "/task/"), parent, "/children");
        const long fd =
            raw_syscall(SYS_openat, proc, reinterpret_cast<long>(path), O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        PidListReader reader;
        for (;;) {
            const long n = raw_syscall(SYS_read, fd, reinterpret_cast<long>(text), sizeof text);
            if (n == -EINTR) continue;
            const std::size_t got =
                n > 0 ? reader.feed(text, static_cast<std::size_t>(n), pids) : reader.finish(pids);
            for (std::size_t k = 0; k < got && count < kSweepSlots; ++k) {
                raw_syscall(SYS_kill, pids[k], SIGSTOP);  // a stopped parent cannot reap it
                found[count++] = pids[k];
            }
            if (n <= 0) break;
        }
        raw_syscall(SYS_close, fd);
    }
    std::size_t fresh = 0;
    for (std::size_t i = 1; i < count; ++i) {
        raw_syscall(SYS_kill, found[i], SIGKILL);
        fresh += note_killed(state, found[i]);
    }
    return fresh;
}

struct PassResult {
    std::size_t fresh = 0;      // processes killed that no earlier pass had killed
    std::size_t undecided = 0;  // processes in the middle of an exec
};

// One look at every process: each one of the run is stopped, everything below it is killed,
// then it is killed itself.
IPEX_WATCHDOG_SAFE PassResult sweep_pass(WatchdogState* state, pid_t self, unsigned uid) {
    PassResult result;
    const long proc = raw_syscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc"),
                                  O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (proc < 0) return result;
    alignas(8) char entries[4096];
    for (;;) {
        const long n =
            raw_syscall(SYS_getdents64, proc, reinterpret_cast<long>(entries), sizeof entries);
        if (n <= 0) break;
        for (long at = 0; at < n;) {
            const auto* entry = reinterpret_cast<const DirectoryEntry*>(entries + at);
            at += entry->length;
            const pid_t pid = pid_from_name(entry->name);
            if (pid <= 0 || pid == self) continue;
            // Taken before the environment is read: if the process ends and its pid is
            // handed on meanwhile, the signals below fail instead of hitting the newcomer.
            const long pidfd = raw_syscall(SYS_pidfd_open, pid, 0);
            if (pidfd == -ESRCH) continue;
            const Membership member = membership(state, proc, pid, uid);
            if (member == Membership::kInside) {
                signal_process(pidfd, pid, SIGSTOP);
                result.fresh += kill_below(state, proc, pid);
                signal_process(pidfd, pid, SIGKILL);
                result.fresh += note_killed(state, pid);
            }
            if (member == Membership::kUndecided) ++result.undecided;
            if (pidfd >= 0) raw_syscall(SYS_close, pidfd);
        }
    }
    raw_syscall(SYS_close, proc);
    return result;
}

// Kills every process of the run, wherever the kernel has re-parented it: by the time the
// watchdog runs, the death signal may already have killed the instances and their helpers
// may belong to init, but they still carry the run's id. Processes started meanwhile (a
// fork that finished before its parent was killed) show up in the next pass.
IPEX_WATCHDOG_SAFE void sweep_run(WatchdogState* state) {
    const auto self = static_cast<pid_t>(raw_syscall(SYS_getpid));
    const auto uid = static_cast<unsigned>(raw_syscall(SYS_geteuid));
    const struct timespec pause = {0, kPauseBetweenPassesNs};
    for (SweepRounds rounds;;) {
        const PassResult pass = sweep_pass(state, self, uid);
        if (!rounds.another(pass.fresh, pass.undecided)) break;
        raw_syscall(SYS_nanosleep, reinterpret_cast<long>(&pause), 0);
    }
}

IPEX_WATCHDOG_SAFE int watchdog_main(void* arg) {
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
    if (state->has_run_id) sweep_run(state);
    // Whatever is left in the instances' groups: a process there that dropped the variable.
    for (std::size_t i = 0; i < state->count; ++i)
        raw_syscall(SYS_kill, -state->groups[i], SIGKILL);
    raw_syscall(SYS_exit, 0);
    return 0;
}

// 32 hex digits from the kernel's random source; without one (an early boot), the pid and
// the time, which no other run has at the same moment.
std::string make_run_id() {
    unsigned char bytes[16];
    if (getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
        const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
        for (std::size_t i = 0; i < sizeof bytes; ++i)
            bytes[i] = static_cast<unsigned char>(
                (i < 8 ? static_cast<std::uint64_t>(now) >> (8 * i)
                       : static_cast<std::uint64_t>(getpid()) >> (8 * (i - 8))) &
                0xff);
    }
    static const char kHex[] = "0123456789abcdef";
    std::string id;
    for (unsigned char byte : bytes) {
        id += kHex[byte >> 4];
        id += kHex[byte & 15];
    }
    return id;
}

}  // namespace

CleanupWatchdog::CleanupWatchdog() : run_id_(make_run_id()) {}

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
    state->has_run_id = !run_id_.empty();
    new (&state->run_id) TextFinder(run_id_.data(), run_id_.size());
    state->count = 0;
    state->capacity = capacity;
    state->killed_count = 0;
    state->sweep = state->groups + capacity;
    state->killed = state->sweep + kSweepSlots;

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
