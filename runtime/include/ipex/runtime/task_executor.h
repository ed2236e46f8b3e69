// TaskExecutor: one worker thread, pinned to a CPUPool with its own OpenMP team (one thread
// per CPU of the pool), running submitted jobs in submission order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "ipex/runtime/cpu_pool.h"

namespace ipex::runtime {

class TaskExecutor {
  public:
    struct Job {
        std::function<void()> run;
        // Called instead of run when the executor is shut down with Shutdown::cancel.
        std::function<void(std::exception_ptr)> cancel;
    };
    enum class Shutdown { drain, cancel };

    // Starts the worker and waits until it is pinned; rethrows a pinning failure.
    explicit TaskExecutor(CPUPool pool);
    ~TaskExecutor();  // shutdown(Shutdown::drain)
    TaskExecutor(const TaskExecutor&) = delete;
    TaskExecutor& operator=(const TaskExecutor&) = delete;

    // Throws std::runtime_error once the executor is shut down.
    void submit(Job job);

    // Stops accepting jobs; drain runs the queued ones first, cancel hands each queued job an
    // error instead. Joins the worker (called from one of its own jobs, e.g. when a job drops
    // the last reference to its executor, the worker finishes on its own instead). Idempotent.
    void shutdown(Shutdown mode = Shutdown::drain);

    const CPUPool& pool() const { return pool_; }
    std::thread::id worker_id() const { return worker_id_; }

  private:
    // Shared with the worker, so that it may outlive this object (see shutdown()).
    struct Queue {
        std::mutex mu;
        std::condition_variable cv;
        std::deque<Job> jobs;
        bool stopping = false;
        std::atomic<bool> wake{false};  // jobs or stopping: lets the worker spin without the lock
    };
    static void loop(std::shared_ptr<Queue> queue, CPUPool pool, std::exception_ptr* startup_error,
                     bool* started);

    CPUPool pool_;
    std::shared_ptr<Queue> queue_;
    std::thread worker_;
    std::thread::id worker_id_;
};

}  // namespace ipex::runtime
