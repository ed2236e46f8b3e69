// report.json and latencies.csv of `ipexrun --benchmark-report DIR`. Pure: documents from
// results. Schema (version 1) in the README, "Benchmarking".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "benchmark_report.h"
#include "ipex/affinity/topology.h"

namespace ipex::launcher {

constexpr int kReportSchemaVersion = 1;

struct ReportContext {
    std::vector<std::string> command;      // ipexrun's argv
    std::string started_utc;               // "2026-11-30T06:50:00Z"
    double wall_seconds = 0;               // launch to the last instance's end
    nlohmann::ordered_json plan;           // the --dry-run document of the run
    nlohmann::ordered_json machine;        // machine_summary()
    nlohmann::ordered_json options;        // the benchmarking options
    std::size_t rejected_connections = 0;  // across nodes: refused as not ranks of the job
};

// Host name, packages, cores, CPUs and NUMA nodes usable by this process, SMT.
nlohmann::ordered_json machine_summary(const affinity::Topology& topology,
                                       const std::string& hostname);

nlohmann::ordered_json stats_json(const LatencyStats& stats);
nlohmann::ordered_json report_document(const ReportContext& context,
                                       const std::vector<InstanceResult>& results);

// "instance,node,samples,seconds" and one row per measured batch, in arrival order.
std::string latencies_csv(const std::vector<InstanceResult>& results);

}  // namespace ipex::launcher
