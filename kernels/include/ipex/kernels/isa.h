// CPU capability checks for the kernels, done once per process.
#pragma once

namespace ipex::kernels {

// True when oneDNN can run bf16 primitives natively here (AVX512-BF16 or AMX), unless the
// check was forced off with IPEX_DISABLE_BF16=1 or set_bf16_disabled(true).
bool bf16_supported();

// True when oneDNN has AVX-512 kernels here, whose convolutions run channels-last (nhwc)
// activations as fast as its blocked layouts; below AVX-512 they are much faster blocked.
bool avx512_kernels();

// Test hook: pretend the CPU lacks bf16 (exercises the fp32 fallback path).
void set_bf16_disabled(bool disabled);

}  // namespace ipex::kernels
