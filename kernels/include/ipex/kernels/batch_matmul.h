// Batched matmul on oneDNN for activations (attention scores and context), with strided
// operands read in place (no transposition copies) and an optional fused scale.
#pragma once

#include <ATen/core/Tensor.h>

namespace ipex::kernels {

// out[..., m, n] = scale * sum_k a[..., m, k] * b[..., k, n]; a and b have equal batch
// dimensions and float32 or bfloat16 type (b is converted to a's type). The output is
// contiguous, in a's type.
at::Tensor batch_matmul(const at::Tensor& a, const at::Tensor& b, double scale);

}  // namespace ipex::kernels
