// The last line of defence against orphans: a tiny helper process that outlives a launcher
// killed with SIGKILL just long enough to kill the instances' process groups.
//
// The death signal (PR_SET_PDEATHSIG) only reaches an instance's main process; helpers it
// started (data loader workers, `sh -c 'a & b'`) would be left running, and by the time
// anyone looks, those whose parent has died belong to init. So every instance gets the run's
// id in IPEXRUN_RUN_ID (inherited by everything it starts), and the watchdog learns every
// instance's process group through a pipe. When the pipe closes without a "done" message,
// the launcher is gone: the watchdog kills every process of its user whose environment
// holds the id (and whatever runs below one of them), pass after pass until none is left,
// then the instances' groups. See orphan_sweep.h for the pure parts.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

namespace ipex::launcher {

class CleanupWatchdog {
  public:
    // Nothing runs until start(): groups watched before are handed over then.
    CleanupWatchdog();
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

    // This run's id (32 hex digits), for the instances' IPEXRUN_RUN_ID.
    const std::string& run_id() const { return run_id_; }

  private:
    void send(int message);

    std::string run_id_;
    pid_t pid_ = -1;
    int write_fd_ = -1;
    void* mapping_ = nullptr;  // the watchdog's stack and state
    std::size_t mapping_bytes_ = 0;
    std::vector<pid_t> pending_;  // watched before start()
};

}  // namespace ipex::launcher
