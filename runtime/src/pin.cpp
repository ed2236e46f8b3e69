#include "ipex/runtime/pin.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "omp_team.h"
#include "torch_threads.h"

namespace ipex::runtime {
namespace {
thread_local std::vector<CPUPool> tls_pool_stack;
}  // namespace

struct pin::Saved {
    int team_size;
    std::vector<detail::CpuMask> masks;
};

pin::pin(const CPUPool& pool) {
    // torch sets the team size on a thread's first parallel op; let it happen before we do,
    // not after.
    detail::settle_torch_thread_count();
    const int n = static_cast<int>(pool.size());
    const int before = omp_get_max_threads();
    saved_.reset(new Saved{before, detail::team_affinity(std::max(before, n))});
    try {
        detail::pin_team(pool.cpus());
    } catch (...) {
        try {
            detail::set_team_affinity(saved_->masks);
        } catch (...) {
        }
        throw;
    }
    omp_set_num_threads(n);
    tls_pool_stack.push_back(pool);
}

pin::~pin() {
    try {
        detail::set_team_affinity(saved_->masks);
    } catch (...) {
        // A destructor cannot report; the masks were valid when read, so this is not expected.
    }
    omp_set_num_threads(saved_->team_size);
    if (!tls_pool_stack.empty()) tls_pool_stack.pop_back();
}

std::optional<CPUPool> current_cpu_pool() {
    if (tls_pool_stack.empty()) return std::nullopt;
    return tls_pool_stack.back();
}

void refresh_pin() {
    if (!tls_pool_stack.empty()) detail::team_repin(tls_pool_stack.back().cpus());
}

std::vector<int> team_thread_ids() {
    std::vector<int> ids(omp_get_max_threads());
#pragma omp parallel num_threads(static_cast <int>(ids.size()))
    ids[omp_get_thread_num()] = static_cast<int>(gettid());
    return ids;
}

bool is_runtime_ext_enabled() {
    return true;
}
const char* openmp_runtime_name() {
    return detail::openmp_runtime_name();
}

}  // namespace ipex::runtime
