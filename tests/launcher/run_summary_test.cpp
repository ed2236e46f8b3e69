#include "run_summary.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <csignal>

using namespace ipex::launcher;

TEST(RunSummary, WaitStatusBecomesWordsAndTheLaunchersCode) {
    EXPECT_EQ(status_text(W_EXITCODE(0, 0)), "exit 0");
    EXPECT_EQ(status_text(W_EXITCODE(3, 0)), "exit 3");
    EXPECT_EQ(status_text(W_EXITCODE(0, SIGTERM)), "killed by SIGTERM");
    EXPECT_EQ(status_text(W_EXITCODE(0, SIGSEGV)), "killed by SIGSEGV");
    EXPECT_EQ(exit_code(W_EXITCODE(3, 0)), 3);
    EXPECT_EQ(exit_code(W_EXITCODE(0, SIGKILL)), 137);
    EXPECT_EQ(exit_code(W_EXITCODE(0, SIGABRT)), 134);
}

TEST(RunSummary, NodesSayWhatBecameOfTheMemoryBinding) {
    InstanceLaunch instance;
    instance.memory_nodes = {2, 5};
    EXPECT_EQ(memory_nodes_text(instance, BindMethod::kDirect, MemoryPolicy::kBind), "2,5");
    EXPECT_EQ(memory_nodes_text(instance, BindMethod::kDirect, MemoryPolicy::kPreferred),
              "2 (preferred)");
    EXPECT_EQ(memory_nodes_text(instance, BindMethod::kDirect, MemoryPolicy::kNone),
              "2,5 (not bound)");
    EXPECT_EQ(memory_nodes_text(instance, BindMethod::kNumactl, MemoryPolicy::kNone), "2,5");
    EXPECT_EQ(memory_nodes_text(instance, BindMethod::kTaskset, MemoryPolicy::kNone),
              "2,5 (not bound)");
    instance.memory_nodes.clear();
    EXPECT_EQ(memory_nodes_text(instance, BindMethod::kDirect, MemoryPolicy::kBind), "-");
}

TEST(RunSummary, WallTimeIsReadableAtEveryScale) {
    EXPECT_EQ(wall_time_text(0.004), "0.00 s");
    EXPECT_EQ(wall_time_text(12.345), "12.35 s");
    EXPECT_EQ(wall_time_text(123.9), "2m03s");
    EXPECT_EQ(wall_time_text(3723), "1h02m03s");
}

TEST(RunSummary, TableHasAlignedColumnsAndCompactCpuRanges) {
    std::vector<SummaryRow> rows(2);
    rows[0].index = 0;
    rows[0].cpus = {0, 1, 2, 3, 8};
    rows[0].nodes = "0";
    rows[0].status = "killed by SIGTERM";
    rows[0].wall_seconds = 1.5;
    rows[1].index = 1;
    rows[1].cpus = {9};
    rows[1].nodes = "1";
    rows[1].status = "not started";
    EXPECT_EQ(summary_table(rows),
              "ipexrun: summary\n"
              "  instance  CPUs   nodes  status             wall time\n"
              "  0         0-3,8  0      killed by SIGTERM  1.50 s\n"
              "  1         9      1      not started        -\n");
}
