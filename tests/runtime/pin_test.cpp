#include "ipex/runtime/pin.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <pthread.h>

#include <atomic>
#include <thread>

#include "test_util.h"

namespace ipex::runtime {
namespace {

using testing::team_allowed_lists;

// Team of two threads first (this machine has two CPUs; larger machines only use 0 and 1).
class PinTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (allowed_cpus().size() < 2) GTEST_SKIP() << "needs two CPUs";
        a_ = allowed_cpus()[0];
        b_ = allowed_cpus()[1];
        testing::set_team_size(2);
    }
    int a_ = 0, b_ = 1;
};

TEST_F(PinTest, PinsOneThreadPerCpuInPoolOrder) {
    std::vector<std::string> before = team_allowed_lists();
    {
        pin p(CPUPool({b_, a_}));
        EXPECT_EQ(omp_get_max_threads(), 2);
        EXPECT_EQ(team_allowed_lists(),
                  (std::vector<std::string>{std::to_string(b_), std::to_string(a_)}));
        ASSERT_TRUE(current_cpu_pool().has_value());
        EXPECT_EQ(current_cpu_pool()->cpus(), (std::vector<int>{b_, a_}));
    }
    EXPECT_EQ(omp_get_max_threads(), 2);
    EXPECT_EQ(team_allowed_lists(), before);
    EXPECT_FALSE(current_cpu_pool().has_value());
}

TEST_F(PinTest, NestedScopesRestoreExactly) {
    std::vector<std::string> outside = team_allowed_lists();
    pin outer(CPUPool({a_, b_}));
    std::vector<std::string> in_outer = team_allowed_lists();
    {
        pin middle(CPUPool({b_}));
        EXPECT_EQ(omp_get_max_threads(), 1);
        EXPECT_EQ(team_allowed_lists(), std::vector<std::string>{std::to_string(b_)});
        {
            pin inner(CPUPool({a_}));
            EXPECT_EQ(omp_get_max_threads(), 1);
            EXPECT_EQ(team_allowed_lists(), std::vector<std::string>{std::to_string(a_)});
            EXPECT_EQ(current_cpu_pool()->cpus(), std::vector<int>{a_});
        }
        EXPECT_EQ(team_allowed_lists(), std::vector<std::string>{std::to_string(b_)});
        EXPECT_EQ(current_cpu_pool()->cpus(), std::vector<int>{b_});  // not stale
    }
    EXPECT_EQ(omp_get_max_threads(), 2);
    EXPECT_EQ(team_allowed_lists(), in_outer);
    EXPECT_EQ(current_cpu_pool()->cpus(), (std::vector<int>{a_, b_}));
}

TEST_F(PinTest, RestoresAHandMadeAffinityOfEveryTeamThread) {
    // Thread 1 of the team restricted by hand to one CPU, thread 0 left wide.
    const int b = b_;
#pragma omp parallel num_threads(2)
    if (omp_get_thread_num() == 1) {
        cpu_set_t s;
        CPU_ZERO(&s);
        CPU_SET(b, &s);
        pthread_setaffinity_np(pthread_self(), sizeof s, &s);
    }
    std::vector<std::string> before = team_allowed_lists();
    ASSERT_EQ(before[1], std::to_string(b_));
    { pin p(CPUPool({a_})); }
    EXPECT_EQ(omp_get_max_threads(), 2);
    EXPECT_EQ(team_allowed_lists(), before);
}

TEST_F(PinTest, WorksOnAnyThreadIndependently) {
    // OpenMP ICVs are per thread: a pin on another thread leaves this thread's team alone.
    std::vector<std::string> mine = team_allowed_lists();
    std::vector<std::string> theirs;
    int their_threads = 0;
    std::thread t([&] {
        pin p(CPUPool({b_}));
        their_threads = omp_get_max_threads();
        theirs = team_allowed_lists();
    });
    t.join();
    EXPECT_EQ(their_threads, 1);
    EXPECT_EQ(theirs, std::vector<std::string>{std::to_string(b_)});
    EXPECT_EQ(team_allowed_lists(), mine);
    EXPECT_EQ(omp_get_max_threads(), 2);
}

TEST_F(PinTest, InsideAParallelRegionFailsCleanly) {
    std::vector<std::string> before = team_allowed_lists();
    std::atomic<int> errors{0};
    const CPUPool pool({a_, b_});
#pragma omp parallel num_threads(2)
    {
        try {
            pin p(pool);  // a nested region gets one thread, not two
        } catch (const std::runtime_error& e) {
            if (std::string(e.what()).find("inside a parallel region") != std::string::npos)
                ++errors;
        }
    }
    EXPECT_EQ(errors.load(), 2);
    EXPECT_EQ(team_allowed_lists(), before);
    EXPECT_EQ(omp_get_max_threads(), 2);
}

TEST(Pin, RuntimeIsAlwaysEnabled) {
    EXPECT_TRUE(is_runtime_ext_enabled());
    EXPECT_NE(std::string(openmp_runtime_name()), "");
}

}  // namespace
}  // namespace ipex::runtime
