// Prepacked oneDNN inner product (nn.Linear) for inference.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/custom_class.h>

#include <memory>

#include "ipex/kernels/post_ops.h"

namespace ipex::kernels {

class LinearContext : public torch::CustomClassHolder {
  public:
    // `weight` is (out_features, in_features); `dtype` as for ConvContext. The context may
    // read `weight` and `bias` where they are, without a copy (the compute type, contiguous,
    // and a kernel that takes a plain layout): whoever edits them afterwards must build a new
    // context, and one that must not see such edits gives it tensors of its own.
    LinearContext(const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                  c10::ScalarType dtype);
    ~LinearContext() override;

    // y = post_ops(x W^T + b) over the last dimension of x; `other` as for ConvContext::run.
    // `out_dtype` may ask for a float32 result from a bfloat16 layer (e.g. a residual stream
    // kept in float32); by default the result has the compute type.
    at::Tensor run(const at::Tensor& x, const PostOps& ops, const c10::optional<at::Tensor>& other,
                   bool in_place, c10::optional<c10::ScalarType> out_dtype = c10::nullopt) const;

    at::Tensor weight() const;
    c10::optional<at::Tensor> bias() const;
    int64_t out_features() const;
    int64_t in_features() const;
    c10::ScalarType dtype() const;
    int64_t cached_primitives() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace ipex::kernels
