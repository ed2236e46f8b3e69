// The last line of defence against orphans: a tiny helper process that outlives a launcher
// killed with SIGKILL just long enough to kill the instances' process groups.
//
// The death signal (PR_SET_PDEATHSIG) only reaches an instance's main process; helpers it
// started (data loader workers, `sh -c 'a & b'`) would be left running. The watchdog learns
// every instance's process group through a pipe; when the pipe closes without a "done"
// message, the launcher is gone and the watchdog SIGKILLs those groups.
#pragma once

#include <sys/types.h>

namespace ipex::launcher {

class CleanupWatchdog {
  public:
    // Forks the watchdog; if that fails the launch goes on without it (the death signal
    // still covers the instances themselves).
    CleanupWatchdog();
    ~CleanupWatchdog();  // same as finish()
    CleanupWatchdog(const CleanupWatchdog&) = delete;
    CleanupWatchdog& operator=(const CleanupWatchdog&) = delete;

    void watch(pid_t group);   // an instance started
    void forget(pid_t group);  // the launcher has reaped it and cleaned up its group itself

    // Normal end: tells the watchdog to exit without killing anything and reaps it.
    void finish();

    bool active() const { return pid_ > 0; }

  private:
    void send(int message);

    pid_t pid_ = -1;
    int write_fd_ = -1;
};

}  // namespace ipex::launcher
