#include "benchmark_report.h"

#include <fmt/format.h>

#include <algorithm>

namespace ipex::launcher {
namespace {

GroupStats group_of(const std::string& name, const std::vector<InstanceResult>& results,
                    const std::vector<int>& members) {
    GroupStats g;
    g.name = name;
    g.instances = members;
    std::vector<std::vector<double>> latencies;
    std::vector<LatencyStats> parts;
    for (int i : members) {
        latencies.push_back(results[i].latencies());
        parts.push_back(instance_stats(results[i]));
    }
    g.stats = merged_stats(latencies, parts);
    return g;
}

std::string state_of(const InstanceResult& r) {
    std::string s = r.status;
    if (r.started && !r.reported_end) s += r.crashed() ? " (partial)" : " (no end)";
    return s;
}

struct Row {
    std::string name, node, status;
    LatencyStats stats;
};

std::string ms(double seconds) {
    return fmt::format("{:.3f}", seconds * 1e3);
}

}  // namespace

std::vector<double> InstanceResult::latencies() const {
    std::vector<double> out;
    out.reserve(records.size());
    for (const auto& r : records) out.push_back(r.seconds);
    return out;
}

double InstanceResult::samples() const {
    double total = 0;
    for (const auto& r : records) total += r.samples;
    return total;
}

LatencyStats instance_stats(const InstanceResult& instance) {
    return latency_stats(instance.latencies(), instance.samples(), instance.window);
}

std::vector<GroupStats> node_stats(const std::vector<InstanceResult>& results) {
    std::vector<std::string> order;
    std::vector<std::vector<int>> members;
    for (std::size_t i = 0; i < results.size(); ++i) {
        auto at = std::find(order.begin(), order.end(), results[i].node);
        if (at == order.end()) {
            order.push_back(results[i].node);
            members.emplace_back();
            at = order.end() - 1;
        }
        members[at - order.begin()].push_back(static_cast<int>(i));
    }
    std::vector<GroupStats> groups;
    for (std::size_t n = 0; n < order.size(); ++n)
        groups.push_back(group_of(order[n], results, members[n]));
    return groups;
}

GroupStats total_stats(const std::vector<InstanceResult>& results) {
    std::vector<int> all(results.size());
    for (std::size_t i = 0; i < results.size(); ++i) all[i] = static_cast<int>(i);
    return group_of("total", results, all);
}

std::string report_table(const std::vector<InstanceResult>& results, const std::string& unit) {
    std::vector<Row> rows;
    for (const auto& r : results)
        rows.push_back({std::to_string(r.index), r.node, state_of(r), instance_stats(r)});
    const auto nodes = node_stats(results);
    for (const auto& n : nodes) rows.push_back({"node", n.name, "", n.stats});
    rows.push_back({"total", "", "", total_stats(results).stats});

    const std::vector<std::string> head = {unit,      "node",      "status", "batches",
                                           "samples", "samples/s", "p50 ms", "p90 ms",
                                           "p99 ms",  "p99.9 ms",  "max ms"};
    std::vector<std::vector<std::string>> cells;
    for (const auto& row : rows) {
        const LatencyStats& s = row.stats;
        const bool any = s.batches > 0;
        cells.push_back({row.name, row.node, row.status, std::to_string(s.batches),
                         fmt::format("{:.0f}", s.samples), fmt::format("{:.1f}", s.throughput),
                         any ? ms(s.p50) : "-", any ? ms(s.p90) : "-", any ? ms(s.p99) : "-",
                         any ? ms(s.p99_9) : "-", any ? ms(s.max) : "-"});
    }
    std::vector<std::size_t> width(head.size());
    for (std::size_t c = 0; c < head.size(); ++c) {
        width[c] = head[c].size();
        for (const auto& line : cells) width[c] = std::max(width[c], line[c].size());
    }
    auto format_line = [&](const std::vector<std::string>& line) {
        std::string out;
        for (std::size_t c = 0; c < line.size(); ++c) {
            const bool left = c < 3;  // names left-aligned, numbers right-aligned
            out += "  ";
            out += left ? fmt::format("{:<{}}", line[c], width[c])
                        : fmt::format("{:>{}}", line[c], width[c]);
        }
        while (!out.empty() && out.back() == ' ') out.pop_back();
        return out + "\n";
    };
    std::string out = "ipexrun: benchmark\n" + format_line(head);
    for (std::size_t i = 0; i < cells.size(); ++i) {
        if (i == results.size() || i + 1 == cells.size()) {
            std::size_t total_width = 0;
            for (auto w : width) total_width += w + 2;
            out += "  " + std::string(total_width - 2, '-') + "\n";
        }
        out += format_line(cells[i]);
    }
    return out;
}

}  // namespace ipex::launcher
