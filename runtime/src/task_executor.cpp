#include "ipex/runtime/task_executor.h"

#include <cxxabi.h>
#include <sched.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>

#include "ipex/runtime/pin.h"

namespace ipex::runtime {

namespace {

// How long an idle worker polls for the next job before it sleeps on the condition variable.
// Waking a sleeping thread costs ~10 us here (more in VMs), which is most of a round trip;
// back-to-back calls (a request loop, MultiStreamModule) arrive well within this window.
// IPEX_TASK_SPIN_US overrides it; 0 sleeps at once.
std::chrono::microseconds spin_window() {
    static const std::chrono::microseconds window = [] {
        const char* text = std::getenv("IPEX_TASK_SPIN_US");
        if (!text || !*text) return std::chrono::microseconds(100);
        char* end = nullptr;
        const long us = std::strtol(text, &end, 10);
        return std::chrono::microseconds(*end == '\0' && us >= 0 ? us : 100);
    }();
    return window;
}

// Polls until `ready` or the window has passed. Yields between polls, so that a submitter
// sharing the worker's CPU gets to run instead of waiting for the end of a time slice.
void spin_until(const std::atomic<bool>& ready) {
    const auto window = spin_window();
    if (window.count() == 0) return;
    const auto deadline = std::chrono::steady_clock::now() + window;
    while (!ready.load(std::memory_order_acquire)) {
        if (std::chrono::steady_clock::now() >= deadline) return;
        sched_yield();
    }
}

}  // namespace

TaskExecutor::TaskExecutor(CPUPool pool)
    : pool_(std::move(pool)), queue_(std::make_shared<Queue>()) {
    std::exception_ptr startup_error;
    bool started = false;
    worker_ = std::thread(loop, queue_, pool_, &startup_error, &started);
    worker_id_ = worker_.get_id();
    std::unique_lock<std::mutex> lock(queue_->mu);
    queue_->cv.wait(lock, [&] { return started; });
    if (startup_error) {
        lock.unlock();
        worker_.join();
        std::rethrow_exception(startup_error);
    }
}

TaskExecutor::~TaskExecutor() {
    shutdown(Shutdown::drain);
}

void TaskExecutor::loop(std::shared_ptr<Queue> q, CPUPool pool, std::exception_ptr* startup_error,
                        bool* started) {
    std::unique_ptr<pin> pinned;
    std::exception_ptr error;
    try {
        pinned = std::make_unique<pin>(pool);
    } catch (...) {
        error = std::current_exception();
    }
    {
        // After this block the constructor may return: startup_error/started are gone.
        std::lock_guard<std::mutex> lock(q->mu);
        *startup_error = error;
        *started = true;
        if (error) q->stopping = true;
    }
    q->cv.notify_all();
    if (!pinned) return;

    for (;;) {
        Job job;
        spin_until(q->wake);
        {
            std::unique_lock<std::mutex> lock(q->mu);
            q->cv.wait(lock, [&] { return q->stopping || !q->jobs.empty(); });
            if (q->jobs.empty()) break;  // stopping and drained
            job = std::move(q->jobs.front());
            q->jobs.pop_front();
            q->wake.store(q->stopping || !q->jobs.empty(), std::memory_order_release);
        }
        // Jobs report their own errors (through their future); one more guard keeps the worker.
        try {
            if (pool.size() > 1)
                refresh_pin();  // a one-thread team has no helper threads to replace
            job.run();
        } catch (abi::__forced_unwind&) {
            throw;  // the thread is being ended (pthread_exit, e.g. by Python at shutdown)
        } catch (...) {
        }
    }
}

void TaskExecutor::submit(Job job) {
    {
        std::lock_guard<std::mutex> lock(queue_->mu);
        if (queue_->stopping)
            throw std::runtime_error("TaskExecutor on CPUs " + pool_.to_string() +
                                     " is shut down and accepts no more tasks");
        queue_->jobs.push_back(std::move(job));
        queue_->wake.store(true, std::memory_order_release);
    }
    queue_->cv.notify_one();
}

void TaskExecutor::shutdown(Shutdown mode) {
    std::deque<Job> cancelled;
    {
        std::lock_guard<std::mutex> lock(queue_->mu);
        queue_->stopping = true;
        queue_->wake.store(true, std::memory_order_release);
        if (mode == Shutdown::cancel) cancelled.swap(queue_->jobs);
    }
    queue_->cv.notify_all();
    if (worker_.joinable()) {
        if (worker_.get_id() == std::this_thread::get_id())
            worker_.detach();
        else
            worker_.join();
    }
    auto error = std::make_exception_ptr(
        std::runtime_error("task cancelled: the TaskExecutor on CPUs " + pool_.to_string() +
                           " was shut down before it ran"));
    for (auto& job : cancelled)
        if (job.cancel) job.cancel(error);
}

}  // namespace ipex::runtime
