#include "layer_call.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <c10/util/Exception.h>

#include "dnnl_glue.h"

namespace ipex::kernels::detail {

using Kind = PostOpStep::Kind;
using alg = dnnl::algorithm;

namespace {

bool dense_cpu_float(const at::Tensor& t) {
    return t.layout() == c10::kStrided && t.device().is_cpu() && kernel_dtype(t.scalar_type());
}

at::Tensor eltwise_on_aten(const at::Tensor& y, const PostOpStep& s) {
    switch (s.alg) {
        case alg::eltwise_relu:
            return s.alpha == 0.f ? at::relu(y) : at::leaky_relu(y, s.alpha);
        case alg::eltwise_gelu_erf:
            return at::gelu(y);
        case alg::eltwise_gelu_tanh:
            return at::gelu(y, "tanh");
        case alg::eltwise_swish:
            return s.alpha == 1.f ? at::silu(y) : y * at::sigmoid(y * s.alpha);
        case alg::eltwise_logistic:
            return at::sigmoid(y);
        case alg::eltwise_tanh:
            return at::tanh(y);
        case alg::eltwise_mish:
            return at::mish(y);
        case alg::eltwise_abs:
            return at::abs(y);
        case alg::eltwise_exp:
            return at::exp(y);
        case alg::eltwise_square:
            return at::square(y);
        case alg::eltwise_sqrt:
            return at::sqrt(y);
        case alg::eltwise_log:
            return at::log(y);
        case alg::eltwise_round:
            return at::round(y);
        case alg::eltwise_hardswish:
            return at::hardswish(y);
        case alg::eltwise_linear:
            return y * s.alpha + s.beta;
        case alg::eltwise_clip:
            return at::clamp(y, s.alpha, s.beta);
        case alg::eltwise_elu:
            return at::elu(y, s.alpha);
        case alg::eltwise_pow:
            return s.alpha == 1.f ? at::pow(y, s.beta) : at::pow(y, s.beta) * s.alpha;
        default:
            TORCH_CHECK(false, "ipex: post-op algorithm ", static_cast<int>(s.alg),
                        " has no ATen form");
    }
}

// `other` right-aligned against `shape`: true when every size is 1 or the output's.
bool broadcasts_into(const at::Tensor& other, c10::IntArrayRef shape) {
    const int64_t off = static_cast<int64_t>(shape.size()) - other.dim();
    if (off < 0) return false;
    for (int64_t i = 0; i < other.dim(); ++i)
        if (other.size(i) != 1 && other.size(i) != shape[off + i]) return false;
    return true;
}

}  // namespace

bool kernels_take(const at::Tensor& x, const c10::optional<at::Tensor>& other) {
    if (!dense_cpu_float(x) || x.numel() == 0) return false;
    const bool other_grad = other && other->defined() && other->requires_grad();
    return !(at::GradMode::is_enabled() && (x.requires_grad() || other_grad));
}

CallTypes call_types(c10::ScalarType input, c10::ScalarType requested, c10::ScalarType compute,
                     c10::optional<c10::ScalarType> out_dtype) {
    if (out_dtype) return {*out_dtype, *out_dtype};
    const bool back_to_bf16 =
        requested == c10::kBFloat16 && input == c10::kBFloat16 && compute != c10::kBFloat16;
    return {compute, back_to_bf16 ? c10::kBFloat16 : compute};
}

c10::ScalarType reference_type(c10::ScalarType compute) {
    return compute == c10::kBFloat16 ? c10::kFloat : compute;
}

at::Tensor reference_input(const at::Tensor& x, c10::ScalarType compute) {
    const auto type = reference_type(compute);
    if (kernel_dtype(x.scalar_type()) && kernel_dtype(compute) && x.scalar_type() != type)
        return x.to(type);
    return x;
}

SecondOperand prepare_second(const PostOps& ops, const c10::optional<at::Tensor>& other,
                             bool in_place, const at::Tensor& x, c10::IntArrayRef shape,
                             c10::ScalarType result, at::Tensor& dst) {
    SecondOperand s;
    const int index = ops.second_index();
    if (index < 0) return s;
    TORCH_CHECK(other && other->defined(), "ipex: the fused add/mul needs a second tensor");
    const at::Tensor& o = *other;
    const bool keeps_type = o.dim() == 0 || c10::promoteTypes(result, o.scalar_type()) == result;
    if (!dense_cpu_float(o) || !keeps_type) {
        s.fusable = false;
        return s;
    }
    if (ops.steps()[index].kind == Kind::sum) {
        if (o.sizes() != shape) {
            s.fusable = false;
            return s;
        }
        // In place, the primitive writes straight into the accumulator when it has dst's type
        // and layout and is not the input being read.
        if (in_place && o.scalar_type() == dst.scalar_type() && !o.is_alias_of(x)) {
            if (o.is_contiguous() && dst.is_contiguous()) {
                dst = o.view(dst.sizes());
                return s;
            }
            if (o.sizes() == dst.sizes() && o.strides() == dst.strides()) {
                dst = o;
                return s;
            }
        }
        dst.view(shape).copy_(o);
        return s;
    }
    if (!broadcasts_into(o, shape)) {
        s.fusable = false;
        return s;
    }
    // oneDNN reads a bfloat16 operand into a bfloat16 output; otherwise float32.
    at::Tensor b = o.scalar_type() == c10::kFloat || dst.scalar_type() == c10::kBFloat16
                       ? o
                       : o.to(at::kFloat);
    // The channel dimension: 1 for convolutions, the last one for linear layers (whose kernel
    // sees the output as rows x features).
    const bool rows = dst.dim() != static_cast<int64_t>(shape.size());
    const int64_t channel = rows ? static_cast<int64_t>(shape.size()) - 1 : 1;
    const int64_t kernel_channel = rows ? dst.dim() - 1 : 1;
    const int64_t off = static_cast<int64_t>(shape.size()) - b.dim();
    bool scalar = true, per_channel = true;
    for (int64_t i = 0; i < b.dim(); ++i) {
        if (b.size(i) == 1) continue;
        scalar = false;
        per_channel = per_channel && off + i == channel;
    }
    if (scalar || per_channel) {
        // oneDNN broadcasts a scalar or per-channel operand itself.
        std::vector<int64_t> dims(dst.dim(), 1);
        if (!scalar) dims[kernel_channel] = shape[channel];
        s.binary = b.reshape(dims).contiguous();
    } else {
        // Other partial broadcasts are not reliable in oneDNN 2.6: the operand is expanded to
        // the output's full size and layout.
        s.binary = at::empty_like(dst, dst.options().dtype(b.scalar_type()));
        s.binary.view(shape).copy_(b);
    }
    s.binary_md = md_of(s.binary);
    return s;
}

at::Tensor finish(const at::Tensor& out, const PostOps& ops, const c10::optional<at::Tensor>& other,
                  bool in_place, c10::ScalarType result) {
    if (in_place && ops.has_sum()) {
        const at::Tensor& acc = *other;
        if (out.data_ptr() != acc.data_ptr()) acc.copy_(out);
        return acc;
    }
    return out.scalar_type() == result ? out : out.to(result);
}

at::Tensor post_ops_on_aten(at::Tensor y, const PostOps& ops, int from,
                            const c10::optional<at::Tensor>& other, bool in_place) {
    const auto& steps = ops.steps();
    at::Tensor accumulator;
    for (size_t i = static_cast<size_t>(from); i < steps.size(); ++i) {
        const PostOpStep& s = steps[i];
        if (s.kind == Kind::eltwise) {
            y = eltwise_on_aten(y, s);
            continue;
        }
        TORCH_CHECK(other && other->defined(), "ipex: the fused add/mul needs a second tensor");
        if (s.kind == Kind::sum) {
            y = at::add(y, *other, s.alpha);
            if (in_place) accumulator = *other;
        } else {
            y = s.kind == Kind::binary_add ? at::add(y, *other) : at::mul(y, *other);
        }
    }
    if (accumulator.defined()) {
        accumulator.copy_(y);
        return accumulator;
    }
    return y;
}

dnnl::memory::desc bias_md(const dnnl::memory::dims& dims) {
    return dnnl::memory::desc(
        dims, dnnl::memory::data_type::f32,
        dims.size() == 1 ? dnnl::memory::format_tag::a : dnnl::memory::format_tag::ab);
}

}  // namespace ipex::kernels::detail
