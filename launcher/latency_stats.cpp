#include "latency_stats.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ipex::launcher {
namespace {

void fill_latencies(LatencyStats& s, std::vector<double>& values) {
    std::sort(values.begin(), values.end());
    s.batches = values.size();
    if (values.empty()) return;
    s.mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
    s.p50 = percentile(values, 50);
    s.p90 = percentile(values, 90);
    s.p99 = percentile(values, 99);
    s.p99_9 = percentile(values, 99.9);
    s.max = values.back();
}

}  // namespace

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) return 0;
    const double position = (sorted.size() - 1) * std::clamp(p, 0.0, 100.0) / 100.0;
    const auto low = static_cast<std::size_t>(std::floor(position));
    const std::size_t high = std::min(low + 1, sorted.size() - 1);
    return sorted[low] + (sorted[high] - sorted[low]) * (position - static_cast<double>(low));
}

LatencyStats latency_stats(std::vector<double> latencies, double samples, double window) {
    LatencyStats s;
    s.samples = samples;
    const double busy = std::accumulate(latencies.begin(), latencies.end(), 0.0);
    s.measured_seconds = window > 0 ? window : busy;
    s.throughput = s.measured_seconds > 0 ? samples / s.measured_seconds : 0;
    fill_latencies(s, latencies);
    return s;
}

LatencyStats merged_stats(const std::vector<std::vector<double>>& latencies,
                          const std::vector<LatencyStats>& parts) {
    LatencyStats s;
    std::vector<double> all;
    for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    for (const auto& p : parts) {
        s.samples += p.samples;
        s.throughput += p.throughput;
        s.measured_seconds = std::max(s.measured_seconds, p.measured_seconds);
    }
    fill_latencies(s, all);
    return s;
}

}  // namespace ipex::launcher
