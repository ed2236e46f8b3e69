#include "ipex/runtime/task_executor.h"

#include <stdexcept>

#include "ipex/runtime/pin.h"

namespace ipex::runtime {

TaskExecutor::TaskExecutor(CPUPool pool) : pool_(std::move(pool)) {
  std::exception_ptr startup_error;
  bool started = false;
  worker_ = std::thread([this, &startup_error, &started] { loop(&startup_error, &started); });
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return started; });
  if (startup_error) {
    lock.unlock();
    worker_.join();
    std::rethrow_exception(startup_error);
  }
}

TaskExecutor::~TaskExecutor() { shutdown(Shutdown::drain); }

void TaskExecutor::loop(std::exception_ptr* startup_error, bool* started) {
  std::unique_ptr<pin> pinned;
  try {
    pinned = std::make_unique<pin>(pool_);
  } catch (...) {
    std::lock_guard<std::mutex> lock(mu_);
    *startup_error = std::current_exception();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    *started = true;
    if (*startup_error) stopping_ = true;
  }
  cv_.notify_all();
  if (!pinned) return;

  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    // Jobs report their own errors (through their future); one more guard keeps the worker.
    try {
      if (pool_.size() > 1) refresh_pin();  // a one-thread team has no helper threads to replace
      job.run();
    } catch (...) {
    }
  }
}

void TaskExecutor::submit(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_)
      throw std::runtime_error("TaskExecutor on CPUs " + pool_.to_string() +
                               " is shut down and accepts no more tasks");
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

void TaskExecutor::shutdown(Shutdown mode) {
  std::deque<Job> cancelled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    if (mode == Shutdown::cancel) cancelled.swap(queue_);
  }
  cv_.notify_all();
  if (worker_.joinable() && worker_.get_id() != std::this_thread::get_id()) worker_.join();
  auto error = std::make_exception_ptr(std::runtime_error(
      "task cancelled: the TaskExecutor on CPUs " + pool_.to_string() + " was shut down before it ran"));
  for (auto& job : cancelled)
    if (job.cancel) job.cancel(error);
}

}  // namespace ipex::runtime
