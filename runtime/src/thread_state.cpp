#include "ipex/runtime/thread_state.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>
#include <ATen/autocast_mode.h>

#include "torch_threads.h"

namespace ipex::runtime {

// at::ThreadLocalState covers grad mode, inference mode and the autocast dispatch keys; the
// autocast CPU dtype is a separate thread-local in this torch, so it travels alongside.
struct ThreadState::Impl {
    at::ThreadLocalState tls;
    at::ScalarType autocast_cpu_dtype = at::autocast::get_autocast_cpu_dtype();
};

ThreadState ThreadState::capture() {
    ThreadState s;
    s.impl_ = std::make_shared<const Impl>();
    return s;
}

struct ThreadState::Scope::Impl {
    explicit Impl(const ThreadState::Impl& s)
        : guard(s.tls), old_dtype(at::autocast::get_autocast_cpu_dtype()) {
        at::autocast::set_autocast_cpu_dtype(s.autocast_cpu_dtype);
    }
    ~Impl() { at::autocast::set_autocast_cpu_dtype(old_dtype); }
    at::ThreadLocalStateGuard guard;
    at::ScalarType old_dtype;
};

ThreadState::Scope::Scope(const ThreadState& state) : impl_(std::make_unique<Impl>(*state.impl_)) {}
ThreadState::Scope::~Scope() = default;

namespace detail {
void settle_torch_thread_count() {
    // at::get_num_threads() runs torch's once-per-thread initialisation of the team size.
    (void)at::get_num_threads();
}
}  // namespace detail

}  // namespace ipex::runtime
