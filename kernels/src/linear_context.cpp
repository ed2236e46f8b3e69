#include "ipex/kernels/linear_context.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

#include "dnnl_glue.h"

namespace ipex::kernels {

using namespace detail;
using dnnl::memory;

namespace {

struct LinearEntry : PrimitiveEntry {
    PackedWeights::Copy weights;
};

}  // namespace

struct LinearContext::Impl {
    int64_t n = 0, k = 0;
    c10::ScalarType requested = c10::kFloat, compute = c10::kFloat;
    std::unique_ptr<PackedWeights> weights;
    c10::optional<at::Tensor> bias;  // float32
    bool matmul = true;  // dnnl::matmul (weights seen as K x N) rather than inner_product
    mutable EntryCache<LinearEntry> cache;
};

namespace {
// dnnl::matmul measured a few percent faster than inner_product on this project's BERT
// benchmark (cold weights, 128..1024 rows); IPEX_LINEAR_PRIMITIVE=inner_product switches back.
bool prefer_matmul() {
    const char* env = std::getenv("IPEX_LINEAR_PRIMITIVE");
    return env == nullptr || std::string(env) != "inner_product";
}
}  // namespace

LinearContext::LinearContext(const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                             c10::ScalarType dtype)
    : impl_(std::make_unique<Impl>()) {
    TORCH_CHECK(weight.dim() == 2, "ipex linear_prepack: weight must be 2-D, got ",
                shape_str(weight.sizes()));
    auto& m = *impl_;
    m.n = weight.size(0);
    m.k = weight.size(1);
    m.requested = dtype;
    m.compute = compute_dtype(dtype, "ipex linear_prepack");
    at::Tensor w = weight.detach().to(m.compute).contiguous();
    m.matmul = prefer_matmul();
    m.weights = std::make_unique<PackedWeights>(w, m.matmul ? md_of(w.t()) : md_of(w));
    if (bias && bias->defined()) {
        TORCH_CHECK(bias->numel() == m.n, "ipex linear_prepack: bias of size ",
                    shape_str(bias->sizes()), " does not match out_features ", m.n);
        m.bias = bias->detach().to(at::kFloat).contiguous();
    }
}

LinearContext::~LinearContext() = default;

at::Tensor LinearContext::weight() const {
    return impl_->weights->unpack({impl_->n, impl_->k});
}
c10::optional<at::Tensor> LinearContext::bias() const {
    if (!impl_->bias) return c10::nullopt;
    return impl_->bias->clone();
}
int64_t LinearContext::out_features() const {
    return impl_->n;
}
int64_t LinearContext::in_features() const {
    return impl_->k;
}
c10::ScalarType LinearContext::dtype() const {
    return impl_->compute;
}
int64_t LinearContext::cached_primitives() const {
    return impl_->cache.size();
}

at::Tensor LinearContext::run(const at::Tensor& input, const PostOps& ops,
                              const c10::optional<at::Tensor>& other, bool in_place,
                              c10::optional<c10::ScalarType> out_dtype) const {
    const auto& m = *impl_;
    const char* op = "ipex linear";
    TORCH_CHECK(input.dim() >= 1 && input.size(-1) == m.k, op,
                ": mat1 and mat2 shapes cannot be multiplied (",
                input.numel() / std::max<int64_t>(input.size(-1), 1), "x",
                input.dim() ? input.size(-1) : 0, " and ", m.k, "x", m.n, "); input size ",
                shape_str(input.sizes()));
    TORCH_CHECK(!(ops.has_sum() || ops.has_binary()) || (other && other->defined()), op,
                ": the fused add/mul needs a second tensor");

    at::Tensor x = input.scalar_type() == m.compute ? input : input.to(m.compute);
    x = x.reshape({-1, m.k});
    if (!x.is_contiguous()) x = x.contiguous();
    const int64_t rows = x.size(0);
    std::vector<int64_t> out_shape = input.sizes().vec();
    out_shape.back() = m.n;

    const c10::ScalarType dst_type = out_dtype.value_or(m.compute);
    TORCH_CHECK(dst_type == c10::kFloat || dst_type == m.compute, op,
                ": out_dtype must be float32 or ", m.compute);
    at::Tensor out = at::empty({rows, m.n}, x.options().dtype(dst_type));
    if (ops.has_sum()) {
        const at::Tensor& acc = *other;
        TORCH_CHECK(acc.sizes().vec() == out_shape, op, ": the tensor added in place has size ",
                    shape_str(acc.sizes()), " but the linear output has size ",
                    shape_str(out_shape));
        if (in_place && acc.scalar_type() == dst_type && acc.is_contiguous())
            out = acc.view({rows, m.n});
        else
            out.copy_(acc.reshape({rows, m.n}));
    }
    at::Tensor binary;
    memory::desc binary_md;
    if (ops.has_binary()) {
        // The second operand may stay float32 (oneDNN reads it in either type).
        at::Tensor b = other->scalar_type() == c10::kFloat ? *other : other->to(m.compute);
        TORCH_CHECK(b.dim() <= static_cast<int64_t>(out_shape.size()), op, ": operand of size ",
                    shape_str(b.sizes()), " cannot broadcast to the output size ",
                    shape_str(out_shape));
        const int64_t off = static_cast<int64_t>(out_shape.size()) - b.dim();
        for (int64_t i = 0; i < b.dim(); ++i)
            TORCH_CHECK(b.size(i) == out_shape[off + i] || b.size(i) == 1, op,
                        ": The size of tensor a (", out_shape[off + i],
                        ") must match the size of tensor b (", b.size(i),
                        ") at non-singleton dimension ", off + i);
        if (b.numel() == m.n && b.size(-1) == m.n)
            binary = b.reshape({1, m.n}).contiguous();
        else if (b.numel() == 1)
            binary = b.reshape({1, 1}).contiguous();
        else
            binary = b.expand(out_shape).reshape({rows, m.n}).contiguous();
        binary_md = md_of(binary);
    }

    const memory::desc src_md = md_of(x), dst_md = md_of(out);
    const int threads = omp_threads();
    KeyBuilder key;
    key.add(rows)
        .add(static_cast<int64_t>(dst_type))
        .add(ops.key())
        .add(static_cast<int64_t>(threads));
    if (binary.defined()) key.add(binary_md);

    auto make = [&]() {
        try {
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            attr.set_post_ops(ops.to_dnnl(binary_md));
            LinearEntry e;
            if (m.matmul) {
                memory::desc wmd_any({m.k, m.n}, to_dnnl(m.compute), memory::format_tag::any);
                memory::desc bias_md =
                    m.bias ? memory::desc({1, m.n}, memory::data_type::f32, memory::format_tag::ab)
                           : memory::desc();
                dnnl::matmul::primitive_desc pd(
                    dnnl::matmul::desc(src_md, wmd_any, bias_md, dst_md), attr, cpu_engine());
                e.prim = dnnl::matmul(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = m.weights->get(pd.weights_desc());
            } else {
                memory::desc wmd_any({m.n, m.k}, to_dnnl(m.compute), memory::format_tag::any);
                memory::desc bias_md =
                    m.bias ? memory::desc({m.n}, memory::data_type::f32, memory::format_tag::a)
                           : memory::desc();
                dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src_md,
                                                    wmd_any, bias_md, dst_md);
                dnnl::inner_product_forward::primitive_desc pd(d, attr, cpu_engine());
                e.prim = dnnl::inner_product_forward(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = m.weights->get(pd.weights_desc());
            }
            return e;
        } catch (const dnnl::error& err) {
            rethrow_dnnl(
                op, "input " + shape_str(input.sizes()) + " weight " + shape_str({m.n, m.k}), err);
        }
    };
    auto entry = m.cache.get(key.str(), threads, make);

    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, wrap(src_md, x)},
        {DNNL_ARG_WEIGHTS, wrap(entry->weights.md, entry->weights.buf)},
        {DNNL_ARG_DST, wrap(dst_md, out)}};
    if (m.bias) {
        const memory::desc bias_md =
            m.matmul ? memory::desc({1, m.n}, memory::data_type::f32, memory::format_tag::ab)
                     : memory::desc({m.n}, memory::data_type::f32, memory::format_tag::a);
        args.emplace(DNNL_ARG_BIAS, memory(bias_md, cpu_engine(), m.bias->data_ptr()));
    }
    if (binary.defined())
        args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.binary_index()) | DNNL_ARG_SRC_1,
                     wrap(binary_md, binary));
    run_primitive(
        op,
        [&] {
            return "input " + shape_str(input.sizes()) + " weight " + shape_str({m.n, m.k});
        },
        *entry, std::move(args));

    if (ops.has_sum() && in_place) {
        if (!out.is_same(*other) && out.data_ptr() != other->data_ptr())
            other->copy_(out.view(out_shape));
        return *other;
    }
    at::Tensor y = out.view(out_shape);
    const bool back_to_bf16 = !out_dtype && m.requested == c10::kBFloat16 &&
                              input.scalar_type() == c10::kBFloat16 && m.compute != c10::kBFloat16;
    return back_to_bf16 ? y.to(c10::kBFloat16) : y;
}

}  // namespace ipex::kernels
