// What a benchmarked run produced, per instance, and the table ipexrun prints from it.
// Pure: the collector fills InstanceResults, these functions only compute and format.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "latency_stats.h"
#include "report_protocol.h"

namespace ipex::launcher {

struct InstanceResult {
    int index = 0;     // instance index (the rank in a distributed run)
    std::string node;  // host name of the machine it ran on
    std::string cpus;  // "0-3"
    std::vector<BatchRecord> records;
    double window = 0;  // last reported measured wall time; 0 if never reported
    std::map<std::string, std::string> meta;
    bool reported_end = false;  // sent "end": its numbers are complete
    bool started = false;
    std::string status = "not started";  // "exit 0", "killed by SIGSEGV", ...
    std::optional<int> exit_code;        // 128 + signal when killed
    std::size_t malformed = 0;           // protocol lines that were dropped
    std::string first_error;
    std::string connected_from;  // a rank's report connection: the peer's address
    bool lost = false;           // a rank's stream ended without its wrapper's exit line

    bool crashed() const { return lost || (exit_code && *exit_code != 0); }
    std::vector<double> latencies() const;
    double samples() const;
};

LatencyStats instance_stats(const InstanceResult& instance);

// A named set of instances measured together: one node, or the whole run.
struct GroupStats {
    std::string name;
    std::vector<int> instances;  // positions in the results vector
    LatencyStats stats;
};

// One group per node, in order of first appearance.
std::vector<GroupStats> node_stats(const std::vector<InstanceResult>& results);
GroupStats total_stats(const std::vector<InstanceResult>& results);

// "ipexrun: benchmark" and aligned rows: every instance (or rank: `unit`), every node, the
// total. Latencies in milliseconds; instances that failed or did not report "end" are marked.
std::string report_table(const std::vector<InstanceResult>& results,
                         const std::string& unit = "instance");

}  // namespace ipex::launcher
