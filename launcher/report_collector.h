// Collects the benchmark reports of one run's instances (protocol: report_protocol.h) on a
// thread of its own: one socket pair per instance, the start barrier ("ready" → "go" once all
// are ready), and a one-line live progress on a terminal.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "benchmark_report.h"
#include "launch_plan.h"
#include "supervisor.h"

namespace ipex::launcher {

struct CollectorSettings {
    bool progress = false;  // draw the live line on stderr
    // Instances that are ready wait at most this long for the slowest one's warm-up.
    std::chrono::seconds barrier_timeout{300};
    std::string node;  // this machine's name in the report
    // Across nodes: a listening TCP socket the ranks' wrappers connect to, and how many
    // ranks to expect. Then the plan's instances (the MPI launcher) report nothing themselves.
    int listen_fd = -1;
    std::size_t remote_ranks = 0;
};

class ReportCollector : public InstanceObserver {
  public:
    // Creates the sockets; throws std::runtime_error if the system refuses.
    ReportCollector(const LaunchPlan& plan, CollectorSettings settings);
    ~ReportCollector() override;
    ReportCollector(const ReportCollector&) = delete;
    ReportCollector& operator=(const ReportCollector&) = delete;

    int fd_for(std::size_t instance) override;
    void started(std::size_t instance) override;
    void ended(std::size_t instance, int wait_status) override;

    void start();  // begins reading
    // Reads what the instances left behind, stops the thread and returns every instance's
    // numbers and fate. Call once, after the run.
    std::vector<InstanceResult> finish();

  private:
    enum class State { kWaiting, kReady, kReleased, kMeasuring, kClosed };
    struct Source {
        int fd = -1;        // the launcher's end, non-blocking
        int child_fd = -1;  // the instance's end until it has started
        ReportReader reader;
        State state = State::kWaiting;
        bool remote = false;  // a rank's connection; identity from its hello line
        std::optional<int> rank, exit_code;
        std::string node, cpus, status;
    };
    struct Fate {
        bool started = false;
        std::optional<int> wait_status;
    };

    void loop();
    bool read_source(std::size_t i);  // false once the stream has ended
    void accept_ranks();
    bool everyone_connected() const;
    void handle(std::size_t i, ReportMessage& m);
    void release_barrier(bool timed_out);
    void draw_progress(bool last);

    const LaunchPlan& plan_;
    CollectorSettings settings_;
    std::vector<Source> sources_;
    std::size_t local_count_ = 0;          // sources_[0..local_count_) are the plan's instances
    std::vector<InstanceResult> results_;  // parallel to sources_; the thread's until finish()
    std::mutex fate_mutex_;
    std::vector<Fate> fates_;
    int wake_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::optional<std::chrono::steady_clock::time_point> first_ready_, measuring_since_;
    bool progress_drawn_ = false;
};

}  // namespace ipex::launcher
