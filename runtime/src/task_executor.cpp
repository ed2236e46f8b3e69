#include "ipex/runtime/task_executor.h"

#include <stdexcept>

#include "ipex/runtime/pin.h"

namespace ipex::runtime {

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
        {
            std::unique_lock<std::mutex> lock(q->mu);
            q->cv.wait(lock, [&] { return q->stopping || !q->jobs.empty(); });
            if (q->jobs.empty()) break;  // stopping and drained
            job = std::move(q->jobs.front());
            q->jobs.pop_front();
        }
        // Jobs report their own errors (through their future); one more guard keeps the worker.
        try {
            if (pool.size() > 1)
                refresh_pin();  // a one-thread team has no helper threads to replace
            job.run();
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
    }
    queue_->cv.notify_one();
}

void TaskExecutor::shutdown(Shutdown mode) {
    std::deque<Job> cancelled;
    {
        std::lock_guard<std::mutex> lock(queue_->mu);
        queue_->stopping = true;
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
