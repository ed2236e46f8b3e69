// The few torch calls the torch-free parts of the runtime need (implemented in thread_state.cpp).
#pragma once

namespace ipex::runtime::detail {

// torch's OpenMP backend sets a thread's team size lazily, on its first parallel op; doing it
// now keeps that from undoing a pin made before the thread's first op.
void settle_torch_thread_count();

}  // namespace ipex::runtime::detail
