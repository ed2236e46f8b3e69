#include "report_json.h"

#include <fmt/format.h>

#include <set>

namespace ipex::launcher {

nlohmann::ordered_json machine_summary(const affinity::Topology& t, const std::string& hostname) {
    std::set<int> packages, cores, nodes;
    int cpus = 0, threads_per_core = 1;
    for (const auto& pu : t.pus) {
        if (!pu.allowed) continue;
        ++cpus;
        packages.insert(pu.package);
        cores.insert(pu.core);
        if (pu.numa >= 0) nodes.insert(pu.numa);
        threads_per_core = std::max(threads_per_core, pu.smt_rank + 1);
    }
    nlohmann::ordered_json j;
    j["hostname"] = hostname;
    j["packages"] = packages.size();
    j["cores"] = cores.size();
    j["cpus"] = cpus;
    j["threads_per_core"] = threads_per_core;
    j["numa_nodes"] = nodes.size();
    return j;
}

nlohmann::ordered_json stats_json(const LatencyStats& s) {
    nlohmann::ordered_json j;
    j["batches"] = s.batches;
    j["samples"] = s.samples;
    j["measured_seconds"] = s.measured_seconds;
    j["throughput"] = s.throughput;
    if (s.batches == 0) {
        j["latency_ms"] = nullptr;
        return j;
    }
    j["latency_ms"] = {{"mean", s.mean * 1e3}, {"p50", s.p50 * 1e3},     {"p90", s.p90 * 1e3},
                       {"p99", s.p99 * 1e3},   {"p99.9", s.p99_9 * 1e3}, {"max", s.max * 1e3}};
    return j;
}

nlohmann::ordered_json report_document(const ReportContext& c,
                                       const std::vector<InstanceResult>& results) {
    nlohmann::ordered_json doc;
    doc["schema"] = "ipexrun-benchmark-report";
    doc["version"] = kReportSchemaVersion;
    doc["created"] = c.started_utc;
    doc["wall_seconds"] = c.wall_seconds;
    doc["command"] = c.command;
    nlohmann::ordered_json versions;
    versions["ipexrun"] = IPEX_VERSION;
    for (const auto& r : results)  // what the instances said about themselves
        for (const auto& [key, value] : r.meta)
            if (key.size() > 8 && key.compare(key.size() - 8, 8, "_version") == 0 &&
                !versions.contains(key.substr(0, key.size() - 8)))
                versions[key.substr(0, key.size() - 8)] = value;
    doc["versions"] = versions;
    doc["options"] = c.options;
    doc["machine"] = c.machine;
    doc["plan"] = c.plan;

    doc["instances"] = nlohmann::ordered_json::array();
    for (const auto& r : results) {
        nlohmann::ordered_json j;
        j["index"] = r.index;
        j["node"] = r.node;
        j["cpus"] = r.cpus;
        j["started"] = r.started;
        j["status"] = r.status;
        j["exit_code"] = r.exit_code ? nlohmann::ordered_json(*r.exit_code) : nullptr;
        j["crashed"] = r.crashed();
        j["complete"] = r.reported_end;
        j["malformed_lines"] = r.malformed;
        if (!r.first_error.empty()) j["first_error"] = r.first_error;
        if (!r.connected_from.empty()) j["connected_from"] = r.connected_from;
        j["meta"] = r.meta;
        j["stats"] = stats_json(instance_stats(r));
        doc["instances"].push_back(std::move(j));
    }
    doc["nodes"] = nlohmann::ordered_json::array();
    for (const auto& n : node_stats(results)) {
        std::vector<int> indexes;
        for (int i : n.instances) indexes.push_back(results[i].index);
        doc["nodes"].push_back(
            {{"node", n.name}, {"instances", indexes}, {"stats", stats_json(n.stats)}});
    }
    doc["total"] = stats_json(total_stats(results).stats);
    doc["rejected_connections"] = c.rejected_connections;
    doc["latencies_file"] = "latencies.csv";
    return doc;
}

std::string latencies_csv(const std::vector<InstanceResult>& results) {
    std::string out = "instance,node,samples,seconds\n";
    for (const auto& r : results)
        for (const auto& b : r.records)
            out += fmt::format("{},{},{},{}\n", r.index, r.node, b.samples, b.seconds);
    return out;
}

}  // namespace ipex::launcher
