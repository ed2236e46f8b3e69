#include "benchmark_options.h"

#include <CLI/CLI.hpp>

#include "option_checks.h"
#include "sweep_layouts.h"

namespace ipex::launcher {
namespace {

// Bounds that keep every derived time and count far from overflow.
constexpr double kMaxBenchmarkSeconds = 7 * 24 * 3600;
constexpr long long kMaxBenchmarkIterations = 1000000000000LL;
constexpr double kMaxLatencyBudgetMs = 3600 * 1000;

}  // namespace

void add_benchmark_report_options(CLI::App& app, BenchmarkOptions& o) {
    const std::string group = "Benchmarking";
    app.add_option("--benchmark-report,--benchmark_report", o.report_dir,
                   "Collect every instance's numbers (ipex.benchmark, or the line protocol on "
                   "IPEXRUN_REPORT_FD) and write DIR/report.json, latencies.csv and report.png")
        ->group(group)
        ->check(not_blank("a folder"));
    app.add_option("--benchmark-duration,--benchmark_duration", o.duration,
                   "Seconds every instance measures, starting together after warm-up")
        ->check(number_within(0, kMaxBenchmarkSeconds, false, "seconds"))
        ->group(group);
    app.add_option("--benchmark-iterations,--benchmark_iterations", o.iterations,
                   "Batches every instance measures")
        ->transform(decimal_integer())
        ->check(whole_number_within(1, kMaxBenchmarkIterations, "batches"))
        ->group(group);
    app.add_flag("--sweep", o.sweep,
                 "Run the program under several layouts (instances x cores, SMT, allocator) "
                 "and rank them")
        ->group(group);
    app.add_option_function<std::string>(
           "--sweep-layouts,--sweep_layouts",
           [&o](const std::string& text) { o.sweep_layouts = parse_layout_list(text); },
           "With --sweep: only these layouts, comma-separated NxC[+smt][:allocator], e.g. "
           "2x4,1x8+smt,4x2:jemalloc")
        ->check([](const std::string& text) {
            try {
                parse_layout_list(text);
                return std::string();
            } catch (const std::invalid_argument& e) {
                return std::string(e.what());
            }
        })
        ->group(group);
    app.add_option("--sweep-latency-budget,--sweep_latency_budget", o.sweep_latency_budget_ms,
                   "With --sweep: the best throughput whose p99 latency is within MS "
                   "milliseconds")
        ->check(number_within(0, kMaxLatencyBudgetMs, false, "milliseconds"))
        ->group(group);
}

}  // namespace ipex::launcher
