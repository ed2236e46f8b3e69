// What the conv and linear contexts do around their oneDNN primitive, written once: whether
// the kernels take a call at all, the dtypes of the call, the second tensor of a fused add/mul
// (in-place accumulator or broadcast operand), the bias argument, and the same computation on
// ATen ops wherever oneDNN cannot give exactly what PyTorch would.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Optional.h>
#include <dnnl.hpp>

#include "ipex/kernels/post_ops.h"

namespace ipex::kernels::detail {

// True when oneDNN may take the call: a dense CPU float32/bfloat16 input with elements, and no
// gradient wanted (the primitives record none).
bool kernels_take(const at::Tensor& x, const c10::optional<at::Tensor>& other);

struct CallTypes {
    c10::ScalarType dst;     // what the primitive writes
    c10::ScalarType result;  // what the call returns
};
// A bfloat16 layer computing in float32 (no native bf16 here) gives bfloat16 inputs a
// bfloat16 result; `out_dtype` asks for another result type.
CallTypes call_types(c10::ScalarType input, c10::ScalarType requested, c10::ScalarType compute,
                     c10::optional<c10::ScalarType> out_dtype);

// The type the ATen reference computes in: float32 for bfloat16 layers (ATen lacks some
// bfloat16 kernels, e.g. transposed convolution), else the layer's own type.
c10::ScalarType reference_type(c10::ScalarType compute);
// The input of the ATen reference: float32/bfloat16 converted to the reference type, anything
// else as given (so that PyTorch raises what it raises).
at::Tensor reference_input(const at::Tensor& x, c10::ScalarType compute);

struct SecondOperand {
    bool fusable = true;  // false: the chain's head runs fused, the rest on ATen
    at::Tensor binary;    // "badd"/"bmul": the operand oneDNN reads (broadcast by oneDNN)
    dnnl::memory::desc binary_md;
};

// Prepares the chain's second tensor for the primitive writing `dst`, the kernel's view of an
// output of logical size `shape` and dtype `result`. "add" copies the accumulator into dst or,
// in place, makes dst the accumulator itself; "badd"/"bmul" get an operand oneDNN can
// broadcast. Not fusable wherever PyTorch's `y + other` would differ: a wider result dtype, a
// broadcast that enlarges the output, a tensor oneDNN cannot read.
SecondOperand prepare_second(const PostOps& ops, const c10::optional<at::Tensor>& other,
                             bool in_place, const at::Tensor& x, c10::IntArrayRef shape,
                             c10::ScalarType result, at::Tensor& dst);

// After the primitive: an in-place accumulator receives the result (and is returned), else
// `out` is returned in the result dtype.
at::Tensor finish(const at::Tensor& out, const PostOps& ops, const c10::optional<at::Tensor>& other,
                  bool in_place, c10::ScalarType result);

// Steps `from`.. of `ops` applied to y with ATen ops (PyTorch's broadcasting, type promotion
// and autograd).
at::Tensor post_ops_on_aten(at::Tensor y, const PostOps& ops, int from,
                            const c10::optional<at::Tensor>& other, bool in_place);

// The float32 bias as a primitive argument of the given dims.
dnnl::memory::desc bias_md(const dnnl::memory::dims& dims);

enum class Fused { done, split, reference };

// One call of a packed layer. `fused(ops, out)` runs the primitive with the chain `ops` and
// reports done, split (the second tensor cannot be fused: the chain is run up to it and the
// rest on ATen) or reference (oneDNN cannot take this call). `reference()` is the layer alone
// on ATen in the call's result dtype; the whole chain then follows on ATen.
template <class FusedFn, class ReferenceFn>
at::Tensor run_layer(const PostOps& ops, const c10::optional<at::Tensor>& other, bool in_place,
                     bool kernels_ok, FusedFn&& fused, ReferenceFn&& reference) {
    at::Tensor out;
    if (kernels_ok) {
        const Fused first = fused(ops, out);
        if (first == Fused::done) return out;
        if (first == Fused::split) {
            const int second = ops.second_index();
            if (fused(ops.prefix(second), out) == Fused::done)
                return post_ops_on_aten(out, ops, second, other, in_place);
        }
    }
    return post_ops_on_aten(reference(), ops, 0, other, in_place);
}

}  // namespace ipex::kernels::detail
