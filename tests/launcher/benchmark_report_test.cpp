// Statistics of reported batches: percentiles, merging, throughput, the table, report.json.
#include <gtest/gtest.h>

#include "benchmark_report.h"
#include "latency_stats.h"
#include "report_json.h"

namespace ipex::launcher {
namespace {

InstanceResult instance(int index, const std::string& node,
                        const std::vector<std::pair<double, double>>& batches) {
    InstanceResult r;
    r.index = index;
    r.node = node;
    r.started = true;
    r.reported_end = true;
    r.status = "exit 0";
    r.exit_code = 0;
    for (auto [s, t] : batches) r.records.push_back({s, t});
    return r;
}

TEST(LatencyStats, PercentileInterpolatesBetweenClosestRanks) {
    // numpy.percentile([1, 2, 3, 4], q) = 1 + 3q/100.
    const std::vector<double> v = {1, 2, 3, 4};
    EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
    EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
    EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
    EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
    EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
    EXPECT_DOUBLE_EQ(percentile({}, 50), 0);
}

TEST(LatencyStats, ThroughputUsesTheReportedWindowElseBusyTime) {
    const auto busy = latency_stats({0.5, 0.5}, 10, 0);
    EXPECT_DOUBLE_EQ(busy.measured_seconds, 1.0);
    EXPECT_DOUBLE_EQ(busy.throughput, 10.0);
    const auto windowed = latency_stats({0.5, 0.5}, 10, 4.0);
    EXPECT_DOUBLE_EQ(windowed.throughput, 2.5);
    EXPECT_DOUBLE_EQ(windowed.max, 0.5);
}

TEST(LatencyStats, MergedPercentilesComeFromAllBatchesNotFromAveraging) {
    // One fast and one slow instance: the job's p50 lies between them, and its p99 is the
    // slow one's, not the mean of the two p99s.
    InstanceResult fast = instance(0, "a", {});
    InstanceResult slow = instance(1, "a", {});
    for (int i = 0; i < 99; ++i) fast.records.push_back({1, 0.001});
    for (int i = 0; i < 99; ++i) slow.records.push_back({1, 0.010});
    const GroupStats total = total_stats({fast, slow});
    EXPECT_EQ(total.stats.batches, 198u);
    EXPECT_DOUBLE_EQ(total.stats.samples, 198);
    EXPECT_DOUBLE_EQ(total.stats.p50, (0.001 + 0.010) / 2);
    EXPECT_DOUBLE_EQ(total.stats.p99, 0.010);
    // Throughputs add up: 99 samples in 0.099 s plus 99 in 0.99 s.
    EXPECT_NEAR(total.stats.throughput, 1000 + 100, 1e-6);
}

TEST(BenchmarkReport, NodesGroupTheirInstances) {
    std::vector<InstanceResult> r = {instance(0, "n1", {{2, 0.1}}), instance(1, "n2", {{4, 0.1}}),
                                     instance(2, "n1", {{6, 0.3}})};
    const auto nodes = node_stats(r);
    ASSERT_EQ(nodes.size(), 2u);
    EXPECT_EQ(nodes[0].name, "n1");
    EXPECT_EQ(nodes[0].instances, (std::vector<int>{0, 2}));
    EXPECT_DOUBLE_EQ(nodes[0].stats.samples, 8);
    EXPECT_DOUBLE_EQ(nodes[0].stats.max, 0.3);
    EXPECT_EQ(nodes[1].instances, (std::vector<int>{1}));
}

TEST(BenchmarkReport, TableMarksCrashedInstancesAndKeepsTheirNumbers) {
    InstanceResult ok = instance(0, "host", {{8, 0.002}, {8, 0.004}});
    InstanceResult crashed = instance(1, "host", {{8, 0.003}});
    crashed.reported_end = false;
    crashed.status = "killed by SIGSEGV";
    crashed.exit_code = 139;
    const std::string table = report_table({ok, crashed});
    EXPECT_NE(table.find("killed by SIGSEGV (partial)"), std::string::npos) << table;
    EXPECT_NE(table.find("total"), std::string::npos);
    EXPECT_NE(table.find("p99.9 ms"), std::string::npos);
    // Its only batch (3 ms) is its p50 and max, in milliseconds.
    EXPECT_NE(table.find("3.000   3.000   3.000     3.000   3.000"), std::string::npos) << table;
    EXPECT_TRUE(crashed.crashed());
    EXPECT_FALSE(ok.crashed());
}

TEST(ReportJson, DocumentHasTheVersionedSchema) {
    InstanceResult a = instance(0, "host", {{4, 0.01}, {4, 0.03}});
    a.meta["torch_version"] = "1.13.1";
    InstanceResult b = instance(1, "host", {});
    b.reported_end = false;
    b.status = "exit 3";
    b.exit_code = 3;
    ReportContext c;
    c.command = {"ipexrun", "x.py"};
    c.started_utc = "2026-11-30T06:00:00Z";
    const auto doc = report_document(c, {a, b});
    EXPECT_EQ(doc["schema"], "ipexrun-benchmark-report");
    EXPECT_EQ(doc["version"], kReportSchemaVersion);
    EXPECT_EQ(doc["versions"]["torch"], "1.13.1");
    ASSERT_EQ(doc["instances"].size(), 2u);
    EXPECT_EQ(doc["instances"][0]["stats"]["batches"], 2);
    EXPECT_DOUBLE_EQ(doc["instances"][0]["stats"]["latency_ms"]["p50"].get<double>(), 20.0);
    EXPECT_TRUE(doc["instances"][1]["crashed"].get<bool>());
    EXPECT_FALSE(doc["instances"][1]["complete"].get<bool>());
    EXPECT_TRUE(doc["instances"][1]["stats"]["latency_ms"].is_null());
    EXPECT_DOUBLE_EQ(doc["total"]["samples"].get<double>(), 8);
    EXPECT_EQ(latencies_csv({a, b}),
              "instance,node,samples,seconds\n0,host,4,0.01\n0,host,4,0.03\n");
}

}  // namespace
}  // namespace ipex::launcher
