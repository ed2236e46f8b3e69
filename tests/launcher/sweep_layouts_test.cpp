// --sweep's pure parts: layout syntax, the generated grid, ranking, the best command.
#include <gtest/gtest.h>

#include "sweep_layouts.h"

namespace ipex::launcher {
namespace {

TEST(SweepLayouts, ParsesAndPrintsTheLayoutSyntax) {
    const Layout l = parse_layout("4x2+smt:jemalloc");
    EXPECT_EQ(l.ninstances, 4);
    EXPECT_EQ(l.cores_per_instance, 2);
    EXPECT_TRUE(l.smt);
    EXPECT_EQ(l.allocator, "jemalloc");
    for (const char* text : {"2x4", "1x8+smt", "3x1:default", "16x4+smt:tcmalloc"})
        EXPECT_EQ(layout_text(parse_layout(text)), text);
    EXPECT_EQ(parse_layout_list(" 2x1, 1x2 ,").size(), 2u);
}

TEST(SweepLayouts, RejectsBadLayoutsWithTheReason) {
    for (const char* bad :
         {"", "2", "x4", "2x", "0x4", "2x0", "2x4:glibc", "2x4+ht", "-1x2", "2x4x1", "9999999x1"})
        EXPECT_THROW(parse_layout(bad), std::invalid_argument) << bad;
    EXPECT_THROW(parse_layout_list(" , "), std::invalid_argument);
    try {
        parse_layout("2x4:glibc");
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("glibc"), std::string::npos);
    }
}

TEST(SweepLayouts, GeneratesEveryEvenSplitWithAndWithoutSmtUnderEachAllocator) {
    const SweepMachine m{12, 2, {"tcmalloc", "default"}};
    const auto layouts = generate_layouts(m);
    // Divisors of 12: 1 2 3 4 6 12 → 6 shapes × 2 (SMT) × 2 allocators.
    EXPECT_EQ(layouts.size(), 24u);
    for (const auto& l : layouts) EXPECT_EQ(l.ninstances * l.cores_per_instance, 12);
    EXPECT_EQ(layouts.front(), (Layout{1, 12, false, "tcmalloc"}));
    EXPECT_EQ(layouts.back(), (Layout{12, 1, true, "default"}));
    EXPECT_EQ(cpus_per_instance(Layout{2, 6, true, ""}, m), 12);
    EXPECT_EQ(cpus_per_instance(Layout{2, 6, false, ""}, m), 6);
}

TEST(SweepLayouts, NoSmtVariantsWithoutSmtAndAtLeastOneAllocatorChoice) {
    const auto layouts = generate_layouts(SweepMachine{2, 1, {}});
    ASSERT_EQ(layouts.size(), 2u);
    EXPECT_EQ(layouts[0], (Layout{1, 2, false, ""}));
    EXPECT_EQ(layouts[1], (Layout{2, 1, false, ""}));
}

SweepResult result(const char* layout, double throughput, double p99, bool ok = true) {
    SweepResult r;
    r.layout = parse_layout(layout);
    r.ok = ok;
    r.throughput = throughput;
    r.p99_ms = p99;
    if (!ok) r.problem = "exit code 1";
    return r;
}

TEST(SweepLayouts, RanksByThroughputThenBudgetThenFailures) {
    const std::vector<SweepResult> results = {result("1x4", 100, 5), result("2x2", 180, 9),
                                              result("4x1", 0, 0, false),
                                              result("4x1+smt", 150, 7)};
    auto ranked = rank_results(results, 0);
    EXPECT_EQ(layout_text(ranked[0].layout), "2x2");
    EXPECT_EQ(layout_text(ranked[1].layout), "4x1+smt");
    EXPECT_EQ(layout_text(ranked[3].layout), "4x1");

    ranked = rank_results(results, 8);  // 2x2 is over the p99 budget now
    EXPECT_EQ(layout_text(ranked[0].layout), "4x1+smt");
    EXPECT_EQ(layout_text(ranked[1].layout), "1x4");
    EXPECT_EQ(layout_text(ranked[2].layout), "2x2");
    EXPECT_FALSE(ranked[2].within_budget);
    EXPECT_FALSE(ranked[3].ok);

    ranked = rank_results(results, 1);  // nothing fits
    EXPECT_FALSE(ranked[0].within_budget);
    EXPECT_EQ(layout_text(ranked[0].layout), "1x4");  // the lowest p99 first
}

TEST(SweepLayouts, BestCommandReplacesLayoutOptionsAndKeepsTheRest) {
    const std::vector<std::string> args = {"--sweep",
                                           "--sweep-layouts",
                                           "2x1,1x2",
                                           "--ninstances=3",
                                           "--ncores_per_instance",
                                           "5",
                                           "5",
                                           "6",
                                           "--use_logical_core",
                                           "--log-dir",
                                           "logs",
                                           "--memory-allocator",
                                           "tcmalloc",
                                           "--sweep-latency-budget",
                                           "20",
                                           "--benchmark-duration",
                                           "5",
                                           "--latency-mode",
                                           "--"};
    const auto kept = strip_layout_options(args);
    EXPECT_EQ(kept,
              (std::vector<std::string>{"--log-dir", "logs", "--benchmark-duration", "5", "--"}));
    const SweepMachine m{4, 2, {}};
    EXPECT_EQ(
        layout_command(parse_layout("2x2+smt:jemalloc"), m, kept, {"bench.py", "--batch size"}),
        "ipexrun --log-dir logs --benchmark-duration 5 --ninstances 2 "
        "--ncores-per-instance 4 --use-logical-cores --memory-allocator jemalloc -- "
        "bench.py '--batch size'");
}

}  // namespace
}  // namespace ipex::launcher
