// The last line of defence against orphans: a tiny helper process that outlives a launcher
// killed with SIGKILL just long enough to kill the instances' process groups.
//
// The death signal (PR_SET_PDEATHSIG) only reaches an instance's main process; helpers it
// started (data loader workers, `sh -c 'a & b'`) would be left running. The watchdog learns
// every instance's process group through a pipe; when the pipe closes without a "done"
// message, the launcher is gone and the watchdog SIGKILLs those groups.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <vector>

namespace ipex::launcher {

class CleanupWatchdog {
  public:
    // Nothing runs until start(): groups watched before are handed over then.
    CleanupWatchdog() = default;
    ~CleanupWatchdog();  // same as finish()
    CleanupWatchdog(const CleanupWatchdog&) = delete;
    CleanupWatchdog& operator=(const CleanupWatchdog&) = delete;

    // Starts the watchdog; called once the instances are on their way, so that its start
    // overlaps theirs. If it cannot start, the launch goes on without it (the death signal
    // still covers the instances themselves).
    void start();

    void watch(pid_t group);   // an instance started
    void forget(pid_t group);  // the launcher has reaped it and cleaned up its group itself

    // Normal end: tells the watchdog to exit without killing anything and reaps it.
    void finish();

    bool active() const { return pid_ > 0; }

  private:
    void send(int message);

    pid_t pid_ = -1;
    int write_fd_ = -1;
    void* mapping_ = nullptr;  // the watchdog's stack and state
    std::size_t mapping_bytes_ = 0;
    std::vector<pid_t> pending_;  // watched before start()
};

}  // namespace ipex::launcher
