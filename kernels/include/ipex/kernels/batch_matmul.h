// Batched matmul on oneDNN for activations (attention scores and context), with strided
// operands read in place (no transposition copies) and an optional fused scale.
#pragma once

#include <ATen/core/Tensor.h>

namespace ipex::kernels {

#include <c10/util/Optional.h>

// out[..., m, n] = scale * sum_k a[..., m, k] * b[..., k, n]; a and b have equal batch
// dimensions and float32 or bfloat16 type (b is converted to a's type). The result is a new
// contiguous tensor in a's type, or is written into `out` (any strides, e.g. a permuted view
// so that attention heads land interleaved without a transposition copy).
at::Tensor batch_matmul(const at::Tensor& a, const at::Tensor& b, double scale,
                        const c10::optional<at::Tensor>& out);

}  // namespace ipex::kernels
