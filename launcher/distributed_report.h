// Benchmark reports across nodes, without a shared filesystem. The launching ipexrun listens
// on a TCP port and tells every rank where in IPEXRUN_REPORT_ADDR ("host:port"; the host is
// this machine's address facing the other nodes, or empty under Slurm: then the rank uses
// srun's SLURM_LAUNCH_NODE_IPADDR, else its MASTER_ADDR) and IPEXRUN_REPORT_KEY (a random key
// of the job). Each rank's ipexrun wrapper connects, introduces its rank ("hello"), hands the
// connection to its instance as fd 3 (the instance speaks the same protocol as on one
// machine, barrier included) and, when the instance has ended, adds its exit status ("exit")
// and hangs up. A rank that cannot connect runs unreported after one warning line, which the
// launcher recognises so that the others do not wait for it. See report_protocol.h.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "distributed_launch.h"
#include "launch_plan.h"
#include "supervisor.h"

namespace ipex::launcher {

constexpr const char* kReportAddressVariable = "IPEXRUN_REPORT_ADDR";
constexpr const char* kReportKeyVariable = "IPEXRUN_REPORT_KEY";

// The launching side: opens the port, passes its address to the ranks and runs the job through
// `run_distributed` with a runner that collects every rank's stream and then prints the table
// and writes the report as on one machine (node = each rank's host).
using DistributedLauncher = std::function<int(const LaunchOptions&, const affinity::Topology&,
                                              const allocator::Environment&, const JobRunner&)>;
int run_distributed_benchmark(const LaunchOptions& options, const affinity::Topology& topology,
                              const allocator::Environment& env,
                              const DistributedLauncher& run_distributed);

// The rank side: connects to the launcher and passes the connection to the plan's (single)
// instance; runs the plan. When the launcher cannot be reached the rank runs unreported,
// with the warning below.
int run_reporting_rank(const LaunchPlan& plan, const SupervisorOptions& supervise,
                       const std::string& address, const std::string& key);

// The rank wrapper's warning when it cannot connect, and the launcher's reading of it from
// the MPI launcher's stderr ("ipexrun [rank R host]: warning: ..."): rank and host.
std::string unreachable_report_message(const std::string& address, const std::string& why);
std::optional<std::pair<int, std::string>> parse_unreachable_report(const std::string& line);

}  // namespace ipex::launcher
