#include "benchmark_options.h"

#include <CLI/CLI.hpp>

#include "sweep_layouts.h"

namespace ipex::launcher {

void add_benchmark_report_options(CLI::App& app, BenchmarkOptions& o) {
    const std::string group = "Benchmarking";
    app.add_option("--benchmark-report,--benchmark_report", o.report_dir,
                   "Collect every instance's numbers (ipex.benchmark, or the line protocol on "
                   "IPEXRUN_REPORT_FD) and write DIR/report.json, latencies.csv and report.png")
        ->group(group);
    app.add_option("--benchmark-duration,--benchmark_duration", o.duration,
                   "Seconds every instance measures, starting together after warm-up")
        ->check(CLI::PositiveNumber)
        ->group(group);
    app.add_option("--benchmark-iterations,--benchmark_iterations", o.iterations,
                   "Batches every instance measures")
        ->check(CLI::PositiveNumber)
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
        ->check(CLI::PositiveNumber)
        ->group(group);
}

}  // namespace ipex::launcher
