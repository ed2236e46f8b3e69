// CPU capability checks for the kernels, done once per process.
#pragma once

namespace ipex::kernels {

// True when oneDNN can run bf16 primitives natively here (AVX512-BF16 or AMX), unless the
// check was forced off with IPEX_DISABLE_BF16=1 or set_bf16_disabled(true).
bool bf16_supported();

// Test hook: pretend the CPU lacks bf16 (exercises the fp32 fallback path).
void set_bf16_disabled(bool disabled);

}  // namespace ipex::kernels
