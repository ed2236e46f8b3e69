#include "ipex/runtime/thread_count_watch.h"

#include <dlfcn.h>
#include <omp.h>

#include <atomic>

namespace ipex::runtime {
namespace {

std::atomic<std::uint64_t> g_generation{0};
std::atomic<std::uint64_t> g_invalidations{0};
// Team size this thread had when it last set or read it; -1 = not seen yet.
thread_local int tls_last_seen = -1;

void observe(int n) {
    if (tls_last_seen != -1 && tls_last_seen != n)
        g_generation.fetch_add(1, std::memory_order_relaxed);
    tls_last_seen = n;
}

using SetNumThreads = void (*)(int);

SetNumThreads real_omp_set_num_threads();

}  // namespace

std::uint64_t omp_thread_generation() {
    return g_generation.load(std::memory_order_relaxed);
}

int current_omp_threads() {
    int n = omp_get_max_threads();
    observe(n);
    return n;
}

void note_cache_invalidation() {
    g_invalidations.fetch_add(1, std::memory_order_relaxed);
}
std::uint64_t cache_invalidations() {
    return g_invalidations.load(std::memory_order_relaxed);
}

namespace {
SetNumThreads real_omp_set_num_threads() {
    // The next definition after this library: the OpenMP runtime's own (libgomp, or libiomp5
    // when that is preloaded).
    static const SetNumThreads real = [] {
        auto f = reinterpret_cast<SetNumThreads>(dlsym(RTLD_NEXT, "omp_set_num_threads"));
        if (f == nullptr) {
            void* gomp = dlopen("libgomp.so.1", RTLD_NOW | RTLD_NOLOAD);
            if (gomp != nullptr)
                f = reinterpret_cast<SetNumThreads>(dlsym(gomp, "omp_set_num_threads"));
        }
        return f;
    }();
    return real;
}
}  // namespace

}  // namespace ipex::runtime

// Interposes the OpenMP runtime's omp_set_num_threads: effective for every caller in the
// process when the library is preloaded (ipexrun does), for this library's own calls otherwise.
extern "C" __attribute__((visibility("default"))) void omp_set_num_threads(int n) {
    auto real = ipex::runtime::real_omp_set_num_threads();
    if (real == nullptr || real == &omp_set_num_threads)
        return;  // no OpenMP runtime: nothing to set
    if (ipex::runtime::tls_last_seen == -1) ipex::runtime::tls_last_seen = omp_get_max_threads();
    real(n);
    ipex::runtime::observe(omp_get_max_threads());
}
