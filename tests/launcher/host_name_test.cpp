#include "host_name.h"

#include <gtest/gtest.h>

#include <fstream>

using namespace ipex::launcher;

TEST(HostName, IsWhatTheKernelCallsThisMachine) {
    std::ifstream kernel_name("/proc/sys/kernel/hostname");
    std::string expected;
    ASSERT_TRUE(std::getline(kernel_name, expected));
    EXPECT_EQ(this_host_name(), expected);
}

TEST(HostName, ShortFormStopsAtTheFirstDot) {
    EXPECT_EQ(short_host_name("node01.rack2.example.org"), "node01");
    EXPECT_EQ(short_host_name("node01"), "node01");
    EXPECT_EQ(short_host_name("node01."), "node01");
    EXPECT_EQ(short_host_name(""), "");
}
