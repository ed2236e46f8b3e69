// Watches the OpenMP team size so that caches of oneDNN primitives and packed weights never
// reuse an entry that was built for another thread count (the peer's "incorrect Conv and
// Linear result if the number of OMP threads is changed at runtime").
#pragma once

#include <cstdint>

namespace ipex::runtime {

// Bumped whenever any thread changes its OpenMP team size (omp_set_num_threads, interposed
// when libipex_runtime.so is preloaded, or a change seen at kernel entry).
std::uint64_t omp_thread_generation();

// The team size the calling thread's next parallel region gets (omp_get_max_threads()).
// Caches key their entries by this value; reading it also notices changes made behind
// our back (e.g. by OMP_NUM_THREADS-less libgomp calls) and bumps the generation.
int current_omp_threads();

// Called by a cache when it had to build a new entry because the thread count differed
// from the one its existing entry was built for.
void note_cache_invalidation();
std::uint64_t cache_invalidations();

}  // namespace ipex::runtime
