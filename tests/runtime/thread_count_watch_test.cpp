#include "ipex/runtime/thread_count_watch.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <thread>

#include "ipex/runtime/cpu_pool.h"
#include "ipex/runtime/pin.h"
#include "test_util.h"

namespace ipex::runtime {
namespace {

TEST(ThreadCountWatch, ReadingNoticesAChange) {
    testing::set_team_size(2);
    EXPECT_EQ(current_omp_threads(), 2);
    auto g0 = omp_thread_generation();
    EXPECT_EQ(current_omp_threads(), 2);
    EXPECT_EQ(omp_thread_generation(), g0) << "no change, no bump";
    omp_set_num_threads(1);
    EXPECT_EQ(current_omp_threads(), 1);
    EXPECT_GT(omp_thread_generation(), g0);
    auto g1 = omp_thread_generation();
    omp_set_num_threads(2);
    EXPECT_EQ(current_omp_threads(), 2);
    EXPECT_GT(omp_thread_generation(), g1);
}

TEST(ThreadCountWatch, PinChangesTheTeamSizeAndBumps) {
    testing::set_team_size(2);
    (void)current_omp_threads();
    auto g0 = omp_thread_generation();
    {
        pin p(CPUPool({allowed_cpus()[0]}));
        EXPECT_EQ(current_omp_threads(), 1);
    }
    EXPECT_EQ(current_omp_threads(), 2);
    EXPECT_GE(omp_thread_generation(), g0 + 2);
}

TEST(ThreadCountWatch, FirstReadOnAThreadIsNotAChange) {
    auto g0 = omp_thread_generation();
    std::thread([] { (void)current_omp_threads(); }).join();
    EXPECT_EQ(omp_thread_generation(), g0);
}

TEST(ThreadCountWatch, InvalidationCounter) {
    auto n = cache_invalidations();
    note_cache_invalidation();
    note_cache_invalidation();
    EXPECT_EQ(cache_invalidations(), n + 2);
}

}  // namespace
}  // namespace ipex::runtime
