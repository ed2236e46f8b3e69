// The benchmarking options: --benchmark-report, --benchmark-duration/-iterations, --sweep.
#pragma once

#include <string>
#include <vector>

#include "sweep_layouts.h"

namespace CLI {
class App;
}

namespace ipex::launcher {

struct BenchmarkOptions {
    std::string report_dir;  // --benchmark-report: where report.json/.png and latencies go
    double duration = 0;     // seconds each instance measures; 0 = the program decides
    long iterations = 0;     // batches each instance measures; 0 = the program decides
    bool sweep = false;
    std::vector<Layout> sweep_layouts;   // --sweep-layouts; {} = generated
    double sweep_latency_budget_ms = 0;  // 0 = best throughput, whatever the latency

    // Whether the instances report to ipexrun at all.
    bool collecting() const {
        return !report_dir.empty() || duration > 0 || iterations > 0 || sweep;
    }
};

// Adds the options to the parser, in their own "Benchmarking" group.
void add_benchmark_report_options(CLI::App& app, BenchmarkOptions& options);

}  // namespace ipex::launcher
