#include "ipex/kernels/isa.h"

#include <dnnl.hpp>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace ipex::kernels {
namespace {

bool detect_bf16() {
    const char* env = std::getenv("IPEX_DISABLE_BF16");
    if (env != nullptr && std::strcmp(env, "0") != 0 && *env != '\0') return false;
    // oneDNN's own view of the CPU (respects ONEDNN_MAX_CPU_ISA), checked together with the
    // raw CPUID bit so a capped oneDNN cannot claim bf16 the core lacks.
    const auto isa = dnnl::get_effective_cpu_isa();
    const bool dnnl_ok =
        isa == dnnl::cpu_isa::avx512_core_bf16 || isa == dnnl::cpu_isa::avx512_core_amx;
    return dnnl_ok && __builtin_cpu_supports("avx512bf16");
}

std::atomic<bool> g_disabled{false};

}  // namespace

bool bf16_supported() {
    static const bool detected = detect_bf16();  // CPUID once per process
    return detected && !g_disabled.load(std::memory_order_relaxed);
}

bool avx512_kernels() {
    static const bool detected = [] {
        switch (dnnl::get_effective_cpu_isa()) {  // respects ONEDNN_MAX_CPU_ISA
            case dnnl::cpu_isa::avx512_core:
            case dnnl::cpu_isa::avx512_core_vnni:
            case dnnl::cpu_isa::avx512_core_bf16:
            case dnnl::cpu_isa::avx512_core_amx:
                return true;
            default:
                return false;
        }
    }();
    return detected;
}

void set_bf16_disabled(bool disabled) {
    g_disabled.store(disabled, std::memory_order_relaxed);
}

}  // namespace ipex::kernels
