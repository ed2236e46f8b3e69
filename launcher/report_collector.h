// Collects the benchmark reports of one run's instances (protocol: report_protocol.h) on a
// thread of its own: one socket pair per instance, the start barrier ("ready" → "go" once all
// are ready), and a one-line live progress on a terminal. Across nodes it takes the ranks'
// TCP connections instead, and only those that introduce themselves as ranks of this job.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
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
    std::chrono::milliseconds barrier_timeout{300000};
    std::string node;  // this machine's name in the report
    // Across nodes: a listening TCP socket the ranks' wrappers connect to, how many ranks to
    // expect and the key their hello must carry. Then the plan's instances (the MPI
    // launcher) report nothing themselves.
    int listen_fd = -1;
    std::size_t remote_ranks = 0;
    std::string rank_key;
    // A connection must say hello within this time; ranks still missing this long after the
    // last one arrived are not waited for at the barrier.
    std::chrono::milliseconds hello_timeout{10000};
    std::chrono::milliseconds missing_rank_grace{15000};
    // After the run, ranks' streams still open get this long to deliver their last lines.
    std::chrono::milliseconds drain_timeout{3000};
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
    // A rank said it cannot connect (from any thread): the barrier does not wait for it.
    void rank_unreachable(int rank, const std::string& node);

    void start();  // begins reading
    // Reads what the instances left behind, stops the thread and returns every instance's
    // numbers and fate. Call once, after the run.
    std::vector<InstanceResult> finish();
    // Connections to the port that were not ranks of this job (valid after finish()).
    std::size_t rejected_connections() const { return rejected_; }

  private:
    enum class State { kWaiting, kReady, kReleased, kMeasuring, kClosed };
    using Clock = std::chrono::steady_clock;
    struct Source {
        int fd = -1;        // the launcher's end, non-blocking
        int child_fd = -1;  // the instance's end until it has started
        ReportReader reader;
        State state = State::kWaiting;
        bool remote = false;      // a rank's connection
        bool identified = false;  // remote: said a valid hello
        bool rejected = false;    // remote: closed as not a rank of this job
        std::optional<int> rank, exit_code;
        std::string node, cpus, status, peer;
        Clock::time_point accepted;
    };
    struct Fate {
        bool started = false;
        std::optional<int> wait_status;
    };

    void loop();
    bool read_source(std::size_t i);  // false once the stream has ended
    void accept_ranks();
    void reject(std::size_t i, const std::string& why);
    std::string hello_problem(const ReportMessage& hello) const;
    bool barrier_may_wait_for_more_ranks(Clock::time_point now);
    std::optional<Clock::time_point> next_deadline() const;
    void handle(std::size_t i, ReportMessage& m);
    void release_barrier(bool timed_out);
    void draw_progress(bool last);
    void drain_ranks();

    const LaunchPlan& plan_;
    CollectorSettings settings_;
    std::vector<Source> sources_;
    std::size_t local_count_ = 0;          // sources_[0..local_count_) are the plan's instances
    std::vector<InstanceResult> results_;  // parallel to sources_; the thread's until finish()
    std::set<int> ranks_seen_;
    std::size_t rejected_ = 0;
    std::optional<Clock::time_point> last_arrival_;  // of a rank's hello
    bool gave_up_on_missing_ = false;
    std::mutex fate_mutex_;  // guards fates_ and unreachable_
    std::vector<Fate> fates_;
    std::map<int, std::string> unreachable_;  // rank -> its node
    int wake_fd_ = -1;
    std::atomic<bool> stopping_{false};
    std::thread thread_;
    std::optional<Clock::time_point> first_ready_, measuring_since_;
    bool progress_drawn_ = false;
};

}  // namespace ipex::launcher
