#include "ipex/runtime/task.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "ipex/runtime/pin.h"
#include "test_util.h"

namespace ipex::runtime {
namespace {

std::shared_ptr<TaskExecutor> executor_on(std::vector<int> cpus) {
    return std::make_shared<TaskExecutor>(CPUPool(cpus));
}

TEST(Task, ManyOutstandingCallsRunInOrderOnTheWorker) {
    auto ex = executor_on({allowed_cpus()[0]});
    std::thread::id worker;
    Task square(
        [&worker](int x) {
            worker = std::this_thread::get_id();
            return x * x;
        },
        ex);
    std::vector<std::future<int>> futures;
    for (int i = 0; i < 200; ++i) futures.push_back(square(i));
    for (int i = 0; i < 200; ++i) EXPECT_EQ(futures[i].get(), i * i);
    EXPECT_EQ(worker, ex->worker_id());
    EXPECT_NE(worker, std::this_thread::get_id());
}

TEST(Task, ArgumentsAreCopiedAtSubmission) {
    auto ex = executor_on({allowed_cpus()[0]});
    std::atomic<bool> go{false};
    Task concat(
        [&go](const std::string& a, const std::string& b) {
            while (!go) std::this_thread::yield();
            return a + b;
        },
        ex);
    std::string local = "left";
    auto f = concat(local, std::string("right"));  // a temporary, and a local changed below
    local = "changed";
    go = true;
    EXPECT_EQ(f.get(), "leftright");
}

TEST(Task, MoveOnlyArgumentsAndVoidResults) {
    auto ex = executor_on({allowed_cpus()[0]});
    int seen = 0;
    Task take([&seen](std::unique_ptr<int> p) { seen = *p; }, ex);
    take(std::make_unique<int>(42)).get();
    EXPECT_EQ(seen, 42);
}

TEST(Task, ExceptionsComeOutOfTheFuture) {
    auto ex = executor_on({allowed_cpus()[0]});
    Task fail([](int x) -> int { throw std::out_of_range("bad " + std::to_string(x)); }, ex);
    auto f = fail(7);
    EXPECT_THROW(
        try { f.get(); } catch (const std::out_of_range& e) {
            EXPECT_STREQ(e.what(), "bad 7");
            throw;
        },
        std::out_of_range);
    Task ok([](int x) { return x + 1; }, ex);  // the worker survives
    EXPECT_EQ(ok(1).get(), 2);
}

TEST(Task, WorkerTeamIsPinnedToThePool) {
    const auto& allowed = allowed_cpus();
    std::vector<int> cpus(allowed.rbegin(),
                          allowed.rbegin() + std::min<std::size_t>(2, allowed.size()));
    auto ex = executor_on(cpus);
    Task probe([] { return std::make_pair(omp_get_max_threads(), testing::team_allowed_lists()); },
               ex);
    auto [threads, lists] = probe().get();
    EXPECT_EQ(threads, static_cast<int>(cpus.size()));
    ASSERT_EQ(lists.size(), cpus.size());
    for (std::size_t t = 0; t < cpus.size(); ++t) EXPECT_EQ(lists[t], std::to_string(cpus[t]));
    Task pool([] { return current_cpu_pool(); }, ex);
    EXPECT_EQ(pool().get()->cpus(), cpus);
    // The submitting thread is not affected.
    EXPECT_FALSE(current_cpu_pool().has_value());
}

TEST(Task, ShutdownDrainsQueuedCallsThenRefuses) {
    auto ex = executor_on({allowed_cpus()[0]});
    std::atomic<int> ran{0};
    Task count(
        [&ran] {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return ++ran;
        },
        ex);
    std::vector<std::future<int>> futures;
    for (int i = 0; i < 20; ++i) futures.push_back(count());
    ex->shutdown();
    EXPECT_EQ(ran.load(), 20);
    for (int i = 0; i < 20; ++i) EXPECT_EQ(futures[i].get(), i + 1);
    try {
        count();
        FAIL() << "submit after shutdown must throw";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("shut down"), std::string::npos) << e.what();
    }
}

TEST(Task, ShutdownWithCancelFailsQueuedCalls) {
    auto ex = executor_on({allowed_cpus()[0]});
    std::atomic<bool> started{false}, release{false};
    Task block(
        [&] {
            started = true;
            while (!release) std::this_thread::yield();
            return 1;
        },
        ex);
    auto first = block();
    while (!started) std::this_thread::yield();
    auto queued = block();
    std::thread stopper([&] { ex->shutdown(TaskExecutor::Shutdown::cancel); });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    release = true;
    stopper.join();
    EXPECT_EQ(first.get(), 1);
    try {
        queued.get();
        FAIL() << "a cancelled task must fail";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("cancelled"), std::string::npos) << e.what();
    }
}

TEST(Task, BadPoolFailsAtConstruction) {
    EXPECT_THROW(executor_on({100000}), std::invalid_argument);
}

}  // namespace
}  // namespace ipex::runtime

namespace ipex::runtime {
namespace {

TEST(Task, AJobMayDropTheLastReferenceToItsExecutor) {
    auto holder = std::make_shared<std::shared_ptr<TaskExecutor>>(executor_on({allowed_cpus()[0]}));
    std::weak_ptr<TaskExecutor> watch = *holder;
    std::promise<void> done;
    auto finished = done.get_future();
    (*holder)->submit(TaskExecutor::Job{[holder, &done] {
                                            holder->reset();  // ~TaskExecutor on its own worker
                                            done.set_value();
                                        },
                                        nullptr});
    holder.reset();
    finished.wait();
    for (int i = 0; i < 1000 && !watch.expired(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace ipex::runtime
