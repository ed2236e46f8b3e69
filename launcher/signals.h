// Signals the launcher reacts to, turned into readable bytes on a pipe (the self-pipe trick)
// so that the supervisor's poll loop sees them like any other event.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <csignal>
#include <functional>
#include <string>
#include <vector>

namespace ipex::launcher {

// While an object of this class lives, SIGINT, SIGTERM, SIGHUP, SIGTSTP (Ctrl-Z), SIGCONT and
// SIGCHLD are caught and SIGPIPE is ignored (a closed terminal must not kill the launcher and
// orphan the instances).
// A signal the launcher was started with ignored (nohup, `&` in a script) stays ignored.
// The destructor restores what was there before. Only one may exist at a time.
class SignalWatch {
  public:
    static constexpr int kCount = 7;  // signals whose disposition is changed

    SignalWatch();
    ~SignalWatch();
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

    // Becomes readable when a signal arrived; poll it for POLLIN.
    int fd() const { return read_fd_; }

    // The signals received since the last call, in order (SIGCHLD included).
    std::vector<int> take();

    // For a forked child before exec: puts back the dispositions the launcher found (an
    // ignored SIGPIPE would otherwise be inherited by the program, while a SIGHUP ignored
    // by nohup stays ignored) and unblocks every signal. Async-signal-safe.
    void restore_in_child() const;

  private:
    int read_fd_ = -1;
    int write_fd_ = -1;
    struct sigaction saved_[kCount];
};

// Whether SIGINT, SIGTERM or SIGHUP has reached the living SignalWatch: a stop was asked for.
// For code that waits outside the supervisor's poll loop (a terminal that takes no output).
bool stop_signal_arrived();

// Sends a signal to every process of an instance's process group (instances lead their own
// groups, so helpers they started are reached too). A group that is gone is no error.
void signal_group(pid_t group, int sig);

// While an object of this class lives, the launcher is a child subreaper: descendants that
// lose their parent (daemonised helpers, setsid'd grandchildren) become its children instead
// of init's, so end_adopted_children() can still end them.
class OrphanAdoption {
  public:
    OrphanAdoption();
    ~OrphanAdoption();
    OrphanAdoption(const OrphanAdoption&) = delete;
    OrphanAdoption& operator=(const OrphanAdoption&) = delete;

  private:
    int previous_ = 0;
};

// Ends every remaining child of the launcher: each gets `wait` to exit by itself, then
// SIGTERM, then SIGKILL `grace` later; all are reaped. Returns how many had to be signalled.
// Meant for the very end, when every instance has been reaped. `kill_now`, asked while it
// waits, can cut both times short: SIGKILL at once (the user insisted on stopping).
int end_adopted_children(std::chrono::milliseconds wait, std::chrono::milliseconds grace,
                         const std::function<bool()>& kill_now = {});

// "SIGTERM" for 15; "signal 77" for numbers without a name.
std::string signal_name(int sig);

}  // namespace ipex::launcher
