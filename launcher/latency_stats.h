// Throughput and latency percentiles of a set of measured batches. Pure arithmetic.
#pragma once

#include <cstddef>
#include <vector>

namespace ipex::launcher {

struct LatencyStats {
    std::size_t batches = 0;
    double samples = 0;
    double measured_seconds = 0;  // the time the throughput is taken over
    double throughput = 0;        // samples per second
    // Batch latencies in seconds (0 when there are no batches).
    double mean = 0, p50 = 0, p90 = 0, p99 = 0, p99_9 = 0, max = 0;
};

// The p-th percentile (0..100) of ascending values, interpolating linearly between the two
// closest ranks: numpy.percentile's default, so numbers can be checked against it.
double percentile(const std::vector<double>& sorted, double p);

// Statistics of one stream of batches. The throughput is samples / window when the instance
// reported its wall time (window > 0), else samples / the summed latencies.
LatencyStats latency_stats(std::vector<double> latencies, double samples, double window);

// Several streams measured side by side: percentiles of the merged latencies (exact, from
// every batch), samples and throughputs summed, the longest measured time.
LatencyStats merged_stats(const std::vector<std::vector<double>>& latencies,
                          const std::vector<LatencyStats>& parts);

}  // namespace ipex::launcher
