#include "log_files.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "process_test_util.h"

using namespace ipex::launcher;
using ipex::launcher::testing::files_in;
using ipex::launcher::testing::read_file;
using ipex::launcher::testing::TempDir;

namespace {

LaunchPlan two_instances() {
    LaunchPlan plan;
    plan.instances.resize(2);
    plan.instances[0].index = 0;
    plan.instances[0].cpus = {0, 1, 2, 3, 8};
    plan.instances[1].index = 1;
    plan.instances[1].cpus = {9};
    return plan;
}

bool starts_with(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace

TEST(LogFiles, InstanceNameHoldsIndexAndCompactCpus) {
    InstanceLaunch instance;
    instance.index = 2;
    instance.cpus = {0, 1, 2, 3, 8, 10, 11};
    EXPECT_EQ(instance_log_name(instance), "instance_2_cpus_0-3_8_10-11");
}

TEST(LogFiles, CreatesMissingDirectoriesAndOneFilePerInstance) {
    TempDir tmp;
    const std::string dir = tmp / "a/b";
    RunLogFiles files = create_run_log_files(dir, "job", two_instances());
    EXPECT_TRUE(starts_with(files.stem, dir + "/job_"));
    EXPECT_EQ(files.launcher_path, files.stem + "_launcher.log");
    ASSERT_EQ(files.instance_paths.size(), 2u);
    EXPECT_EQ(files.instance_paths[0], files.stem + "_instance_0_cpus_0-3_8.log");
    EXPECT_EQ(files.instance_paths[1], files.stem + "_instance_1_cpus_9.log");
    EXPECT_EQ(files_in(dir).size(), 3u);
    ASSERT_EQ(files.instance_fds.size(), 2u);
    EXPECT_EQ(write(files.instance_fds[1], "x", 1), 1);
    EXPECT_EQ(read_file(files.instance_paths[1]), "x");
}

TEST(LogFiles, SecondRunInTheSameSecondGetsItsOwnNamesAndLeavesOtherFilesAlone) {
    TempDir tmp;
    { std::ofstream(tmp / "keep.txt") << "mine"; }
    RunLogFiles first = create_run_log_files(tmp.path(), "run", two_instances());
    ASSERT_EQ(write(first.instance_fds[0], "first", 5), 5);
    RunLogFiles second = create_run_log_files(tmp.path(), "run", two_instances());
    RunLogFiles third = create_run_log_files(tmp.path(), "run", two_instances());
    // Clock-second boundaries may separate the runs; either way, no name is shared.
    EXPECT_NE(first.stem, second.stem);
    EXPECT_NE(second.stem, third.stem);
    EXPECT_NE(first.stem, third.stem);
    if (starts_with(second.stem, first.stem)) {
        EXPECT_EQ(second.stem, first.stem + "-2");
    }
    EXPECT_EQ(files_in(tmp.path()).size(), 10u);  // keep.txt + 3 × (launcher + 2 instances)
    EXPECT_EQ(read_file(first.instance_paths[0]), "first");
    EXPECT_EQ(read_file(second.instance_paths[0]), "");
    EXPECT_EQ(read_file(tmp / "keep.txt"), "mine");
}

TEST(LogFiles, StrayFileWithTheSameNameMovesTheRunToTheNextStem) {
    TempDir tmp;
    RunLogFiles first = create_run_log_files(tmp.path(), "run", two_instances());
    const std::string next = first.stem + "-2";
    { std::ofstream(next + "_instance_1_cpus_9.log") << "stray"; }
    RunLogFiles second = create_run_log_files(tmp.path(), "run", two_instances());
    EXPECT_NE(second.stem, first.stem);
    EXPECT_NE(second.stem, next);
    EXPECT_EQ(read_file(next + "_instance_1_cpus_9.log"), "stray");
}

TEST(LogFiles, UnusableDirectoryIsAOneLineError) {
    TempDir tmp;
    { std::ofstream(tmp / "file") << "x"; }
    try {
        create_run_log_files(tmp / "file/logs", "run", two_instances());
        FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find(tmp / "file"), std::string::npos) << message;
        EXPECT_NE(message.find("Not a directory"), std::string::npos) << message;
        EXPECT_EQ(message.find('\n'), std::string::npos);
    }
}
