// A run whose instances report benchmark numbers: the collector around the supervisor, then
// the table on stdout and, with --benchmark-report DIR, report.json, latencies.csv and the
// chart report.png (drawn by report_chart.py with the plan's Python, after the run).
#pragma once

#include <string>
#include <vector>

#include "benchmark_report.h"
#include "ipex/affinity/topology.h"
#include "launch_plan.h"
#include "options.h"
#include "supervisor.h"

namespace ipex::launcher {

// Tells every instance where to report and how long to measure (IPEXRUN_REPORT_FD,
// IPEXRUN_BENCHMARK_DURATION, IPEXRUN_BENCHMARK_ITERATIONS), so that --dry-run shows it.
void add_benchmark_environment(LaunchPlan& plan, const BenchmarkOptions& options);

struct BenchmarkOutcome {
    int exit_code = 0;
    std::vector<InstanceResult> results;
    std::size_t rejected_connections = 0;
};

struct BenchmarkRun {
    const LaunchOptions* options = nullptr;
    const affinity::Topology* topology = nullptr;
    std::vector<std::string> command;  // ipexrun's argv, for the report
    std::string report_dir;            // "" = no files
    bool print_table = true;
    bool chart = true;      // draw report.png (a sweep keeps only each layout's numbers)
    bool progress = false;  // live line (only on a terminal)
    // Across nodes: the ranks connect here instead (see distributed_report.h).
    int listen_fd = -1;
    std::size_t remote_ranks = 0;
    std::string rank_key;
};

// Runs the plan with reporting and writes what was asked for; the exit code is the run's,
// or 1 when the report files cannot be written.
BenchmarkOutcome run_benchmark(const LaunchPlan& plan, const SupervisorOptions& supervise,
                               const BenchmarkRun& run);

// Creates the report directory up front so that a bad path fails before anything runs;
// returns "" or the one-line problem.
std::string prepare_report_dir(const std::string& dir);

// The interpreter that draws charts: the plan's Python, else $IPEXRUN_PYTHON, else the one
// found at build time.
std::string chart_python(const LaunchPlan& plan);

}  // namespace ipex::launcher
