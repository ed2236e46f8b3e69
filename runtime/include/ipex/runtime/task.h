// Task: a callable bound to a TaskExecutor. task(args...) queues a call on the executor's
// pinned worker and returns a std::future of its result.
#pragma once

#include <cxxabi.h>

#include <future>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ipex/runtime/task_executor.h"
#include "ipex/runtime/thread_state.h"

namespace ipex::runtime {

template <class F>
class Task {
  public:
    Task(F f, std::shared_ptr<TaskExecutor> executor)
        : f_(std::make_shared<F>(std::move(f))), executor_(std::move(executor)) {}

    // Arguments are decay-copied at submission, as std::async does, so temporaries and locals
    // of the caller may go away before the call runs. The caller's torch thread-local state
    // (grad mode, inference mode, autocast) applies during the call. Exceptions come out of
    // future::get().
    template <class... Args>
    auto operator()(Args&&... args) {
        using R = std::invoke_result_t<F&, std::decay_t<Args>...>;
        auto promise = std::make_shared<std::promise<R>>();
        std::future<R> result = promise->get_future();
        // Held by pointer: std::function wants a copyable callable, arguments may be move-only.
        auto bound =
            std::make_shared<std::tuple<std::decay_t<Args>...>>(std::forward<Args>(args)...);
        executor_->submit(
            TaskExecutor::Job{[promise, f = f_, bound, state = ThreadState::capture()] {
                                  try {
                                      ThreadState::Scope scope(state);
                                      if constexpr (std::is_void_v<R>) {
                                          std::apply(*f, std::move(*bound));
                                          promise->set_value();
                                      } else {
                                          promise->set_value(std::apply(*f, std::move(*bound)));
                                      }
                                  } catch (abi::__forced_unwind&) {
                                      throw;  // the thread is being ended: let it
                                  } catch (...) {
                                      promise->set_exception(std::current_exception());
                                  }
                              },
                              [promise](std::exception_ptr e) { promise->set_exception(e); }});
        return result;
    }

    TaskExecutor& executor() const { return *executor_; }

  private:
    std::shared_ptr<F> f_;
    std::shared_ptr<TaskExecutor> executor_;
};

}  // namespace ipex::runtime
