#include "omp_team.h"

#include <dlfcn.h>
#include <omp.h>

#include <atomic>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ipex::runtime::detail {
namespace {

// The Intel/LLVM OpenMP affinity API, looked up at run time (libgomp has none of it).
struct KmpApi {
    int (*create)(void**) = nullptr;
    int (*destroy)(void**) = nullptr;
    int (*set_proc)(int, void**) = nullptr;
    int (*set_affinity)(void**) = nullptr;
    bool ok = false;
    KmpApi() {
        create = reinterpret_cast<int (*)(void**)>(dlsym(RTLD_DEFAULT, "kmp_create_affinity_mask"));
        destroy =
            reinterpret_cast<int (*)(void**)>(dlsym(RTLD_DEFAULT, "kmp_destroy_affinity_mask"));
        set_proc = reinterpret_cast<int (*)(int, void**)>(
            dlsym(RTLD_DEFAULT, "kmp_set_affinity_mask_proc"));
        set_affinity = reinterpret_cast<int (*)(void**)>(dlsym(RTLD_DEFAULT, "kmp_set_affinity"));
        ok = create && destroy && set_proc && set_affinity;
    }
};

const KmpApi& kmp() {
    static const KmpApi api;
    return api;
}

// The single CPU this thread was last pinned to by us (-1: none, or a wider mask).
thread_local int tls_pinned_cpu = -1;

int set_calling_thread(const CpuMask& mask) {
    const KmpApi& k = kmp();
    // With OMP_PROC_BIND the runtime keeps threads on its places and Intel/LLVM OpenMP asserts
    // when kmp_set_affinity moved a master off its place; the OS call keeps its books intact.
    if (k.ok && omp_get_proc_bind() == omp_proc_bind_false) {
        void* m = nullptr;
        if (k.create(&m) == 0 || m != nullptr) {
            bool built = true;
            for (int c : mask.cpus()) built = built && k.set_proc(c, &m) == 0;
            int rc = built ? k.set_affinity(&m) : -1;
            k.destroy(&m);
            if (rc == 0) return 0;
        }
        // Affinity disabled in the runtime (KMP_AFFINITY=disabled): the OS call still works.
    }
    return mask.apply_to_calling_thread();
}

// Runs body(thread_num) in a region of n threads, collects the first error.
template <class Body>
void team_region(int n, const char* what, Body body) {
    std::atomic<int> got{0};
    std::atomic<int> err{0};
#pragma omp parallel num_threads(n)
    {
        if (omp_get_thread_num() == 0) got = omp_get_num_threads();
        int rc = body(omp_get_thread_num());
        if (rc != 0) err = rc;
    }
    if (got != n)
        throw std::runtime_error(
            std::string(what) + ": asked OpenMP for " + std::to_string(n) + " threads and got " +
            std::to_string(got.load()) +
            " (called inside a parallel region, or limited by OMP_THREAD_LIMIT or OMP_DYNAMIC)");
    if (err != 0) throw std::runtime_error(std::string(what) + ": " + std::strerror(err.load()));
}

}  // namespace

std::vector<CpuMask> team_affinity(int size) {
    std::vector<CpuMask> masks(size);
    team_region(size, "reading the OpenMP team affinity", [&](int t) {
        masks[t] = CpuMask::of_thread(0);
        return 0;
    });
    return masks;
}

void set_team_affinity(const std::vector<CpuMask>& masks) {
    team_region(static_cast<int>(masks.size()), "restoring the OpenMP team affinity", [&](int t) {
        tls_pinned_cpu = -1;
        return set_calling_thread(masks[t]);
    });
}

void pin_team(const std::vector<int>& cpus) {
    team_region(static_cast<int>(cpus.size()), "pinning the OpenMP team", [&](int t) {
        int rc = set_calling_thread(CpuMask::of_cpus({cpus[t]}));
        tls_pinned_cpu = rc == 0 ? cpus[t] : -1;
        return rc;
    });
}

void team_repin(const std::vector<int>& cpus) {
    team_region(static_cast<int>(cpus.size()), "re-pinning the OpenMP team", [&](int t) {
        if (tls_pinned_cpu == cpus[t]) return 0;
        int rc = set_calling_thread(CpuMask::of_cpus({cpus[t]}));
        tls_pinned_cpu = rc == 0 ? cpus[t] : -1;
        return rc;
    });
}

const char* openmp_runtime_name() {
    return kmp().ok ? "libiomp5/libomp" : "libgomp";
}

}  // namespace ipex::runtime::detail
