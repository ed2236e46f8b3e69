#include "cpu_mask.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ipex::runtime::detail {
namespace {
int mask_width() {
    long conf = sysconf(_SC_NPROCESSORS_CONF);
    return static_cast<int>(std::max<long>(conf, 1024));
}
}  // namespace

CpuMask::CpuMask()
    : ncpus_(mask_width()), set_(CPU_ALLOC(ncpus_), [](cpu_set_t* s) { CPU_FREE(s); }) {
    if (!set_) throw std::bad_alloc();
    CPU_ZERO_S(bytes(), set_.get());
}

CpuMask CpuMask::of_cpus(const std::vector<int>& cpus) {
    CpuMask m;
    for (int c : cpus)
        if (c >= 0 && c < m.ncpus_) CPU_SET_S(c, m.bytes(), m.set_.get());
    return m;
}

CpuMask CpuMask::of_thread(pid_t tid) {
    CpuMask m;
    if (sched_getaffinity(tid, m.bytes(), m.set_.get()) != 0)
        throw std::runtime_error(std::string("sched_getaffinity: ") + std::strerror(errno));
    return m;
}

CpuMask CpuMask::of_pthread(pthread_t t) {
    CpuMask m;
    int rc = pthread_getaffinity_np(t, m.bytes(), m.set_.get());
    if (rc != 0)
        throw std::runtime_error(std::string("pthread_getaffinity_np: ") + std::strerror(rc));
    return m;
}

std::vector<int> CpuMask::cpus() const {
    std::vector<int> out;
    for (int c = 0; c < ncpus_; ++c)
        if (CPU_ISSET_S(c, bytes(), set_.get())) out.push_back(c);
    return out;
}

int CpuMask::apply_to_calling_thread() const {
    return sched_setaffinity(0, bytes(), set_.get()) == 0 ? 0 : errno;
}

bool CpuMask::operator==(const CpuMask& o) const {
    return ncpus_ == o.ncpus_ && CPU_EQUAL_S(bytes(), set_.get(), o.set_.get());
}

}  // namespace ipex::runtime::detail
