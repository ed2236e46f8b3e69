// In-place softmax over the last dimension on oneDNN (vectorised for bfloat16 too, unlike
// PyTorch 1.13's CPU softmax for bf16).
#pragma once

#include <ATen/core/Tensor.h>

namespace ipex::kernels {

// x <- softmax(x, dim=-1); x must be contiguous, float32 or bfloat16.
at::Tensor& softmax_last_dim_(at::Tensor& x);

}  // namespace ipex::kernels
