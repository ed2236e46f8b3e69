// Benchmark reports across nodes, without a shared filesystem. The launching ipexrun listens
// on a TCP port and tells every rank where in IPEXRUN_REPORT_ADDR ("host:port"; an empty host
// means the rank's MASTER_ADDR). Each rank's ipexrun wrapper connects, introduces its rank
// ("hello"), hands the connection to its instance as fd 3 (the instance speaks the same
// protocol as on one machine, barrier included) and, when the instance has ended, adds its
// exit status ("exit") and hangs up. See report_protocol.h.
#pragma once

#include <functional>
#include <string>

#include "distributed_launch.h"
#include "launch_plan.h"
#include "supervisor.h"

namespace ipex::launcher {

constexpr const char* kReportAddressVariable = "IPEXRUN_REPORT_ADDR";

// A listening TCP socket on every address of this machine, on a port the system picks.
class ReportListener {
  public:
    ReportListener();  // throws std::runtime_error when the system refuses
    ~ReportListener();
    ReportListener(const ReportListener&) = delete;
    ReportListener& operator=(const ReportListener&) = delete;
    int fd() const { return fd_; }
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
};

// The launching side: opens the port, passes its address to the ranks and runs the job through
// `run_distributed` with a runner that collects every rank's stream and then prints the table
// and writes the report as on one machine (node = each rank's host).
using DistributedLauncher = std::function<int(const LaunchOptions&, const affinity::Topology&,
                                              const allocator::Environment&, const JobRunner&)>;
int run_distributed_benchmark(const LaunchOptions& options, const affinity::Topology& topology,
                              const allocator::Environment& env,
                              const DistributedLauncher& run_distributed);

// The rank side: connects to `address` and passes the connection to the plan's (single)
// instance; runs the plan. When the launcher cannot be reached the rank runs unreported,
// with a warning.
int run_reporting_rank(const LaunchPlan& plan, const SupervisorOptions& supervise,
                       const std::string& address);

}  // namespace ipex::launcher
