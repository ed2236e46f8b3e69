// Prepacked oneDNN convolution / transposed convolution (1d, 2d, 3d) for inference.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <torch/custom_class.h>

#include <memory>
#include <vector>

#include "ipex/kernels/post_ops.h"

namespace ipex::kernels {

struct ConvGeometry {
    std::vector<int64_t> stride, padding_l, padding_r, dilation, output_padding;
    int64_t groups = 1;
    bool transposed = false;
};

class ConvContext : public torch::CustomClassHolder {
  public:
    // `weight` uses PyTorch's layout (O, I/g, k...) or, transposed, (I, O/g, k...). `dtype`
    // is the compute type (float32 or bfloat16); bfloat16 falls back to float32 with one
    // warning where the CPU lacks it. The plain weight is released after the first pack.
    ConvContext(const at::Tensor& weight, const c10::optional<at::Tensor>& bias, ConvGeometry geo,
                c10::ScalarType dtype);
    ~ConvContext() override;

    // y = post_ops(conv(x)); `other` is the accumulator for "add" (written in place when
    // `in_place`) or the second operand of "badd"/"bmul".
    at::Tensor run(const at::Tensor& x, const PostOps& ops, const c10::optional<at::Tensor>& other,
                   bool in_place) const;

    // The weight in PyTorch's layout and the compute dtype (a fresh tensor).
    at::Tensor weight() const;
    c10::optional<at::Tensor> bias() const;
    const ConvGeometry& geometry() const { return geo_; }
    c10::ScalarType dtype() const;
    int64_t cached_primitives() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    ConvGeometry geo_;
};

}  // namespace ipex::kernels
