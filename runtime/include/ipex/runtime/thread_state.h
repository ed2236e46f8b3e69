// The torch thread-local state a piece of work carries to the thread that runs it: grad mode,
// inference mode, autocast (enabled and dtype), and the rest of at::ThreadLocalState.
#pragma once

#include <memory>

namespace ipex::runtime {

class ThreadState {
  public:
    // The calling thread's state.
    static ThreadState capture();

    // Applies a captured state to the calling thread for the scope's lifetime, then restores
    // what was there.
    class Scope {
      public:
        explicit Scope(const ThreadState& state);
        ~Scope();
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;

      private:
        struct Impl;
        std::unique_ptr<Impl> impl_;
    };

  private:
    struct Impl;
    std::shared_ptr<const Impl> impl_;
};

}  // namespace ipex::runtime
