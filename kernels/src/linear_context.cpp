#include "ipex/kernels/linear_context.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

#include "dnnl_glue.h"
#include "layer_call.h"

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
    std::unique_ptr<PackedWeights> weights;  // null for a reference-only context
    at::Tensor plain;                        // the weight as given, for a reference-only context
    c10::optional<at::Tensor> bias;          // float32 (the weight's dtype if reference-only)
    bool matmul = true;  // dnnl::matmul (weights seen as K x N) rather than inner_product
    mutable EntryCache<LinearEntry> cache;

    // The oneDNN call; see run_layer().
    Fused fused(const at::Tensor& input, const PostOps& ops, const c10::optional<at::Tensor>& other,
                bool in_place, c10::optional<c10::ScalarType> out_dtype, at::Tensor& result) const;
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
    const bool packable = kernel_dtype(dtype);
    m.compute = packable ? compute_dtype(dtype, "ipex linear_prepack") : dtype;
    at::Tensor w = weight.detach().to(m.compute).contiguous();
    m.matmul = prefer_matmul();
    if (packable)
        m.weights = std::make_unique<PackedWeights>(w, m.matmul ? md_of(w.t()) : md_of(w));
    else
        m.plain = w;
    if (bias && bias->defined()) {
        TORCH_CHECK(bias->numel() == m.n, "ipex linear_prepack: bias of size ",
                    shape_str(bias->sizes()), " does not match out_features ", m.n);
        m.bias = bias->detach().to(packable ? at::kFloat : m.compute).contiguous();
    }
}

LinearContext::~LinearContext() = default;

at::Tensor LinearContext::weight() const {
    if (!impl_->weights) return impl_->plain.clone();
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
    TORCH_CHECK(!out_dtype || *out_dtype == c10::kFloat || *out_dtype == m.compute,
                "ipex linear: out_dtype must be float32 or ", m.compute);
    return run_layer(
        ops, other, in_place, m.weights && kernels_take(input, other),
        [&](const PostOps& chain, at::Tensor& out) {
            return m.fused(input, chain, other, in_place, out_dtype, out);
        },
        [&] {
            const auto types = call_types(input.scalar_type(), m.requested, m.compute, out_dtype);
            const at::Tensor w =
                (m.weights ? m.weights->unpack({m.n, m.k}) : m.plain).to(reference_type(m.compute));
            c10::optional<at::Tensor> b;
            if (m.bias) b = m.bias->to(w.scalar_type());
            at::Tensor y = at::linear(reference_input(input, m.compute), w, b);
            return y.scalar_type() == types.result || !kernel_dtype(y.scalar_type())
                       ? y
                       : y.to(types.result);
        });
}

Fused LinearContext::Impl::fused(const at::Tensor& input, const PostOps& ops,
                                 const c10::optional<at::Tensor>& other, bool in_place,
                                 c10::optional<c10::ScalarType> out_dtype,
                                 at::Tensor& result) const {
    const char* op = "ipex linear";
    // Shapes PyTorch refuses go to the reference, which raises PyTorch's own error.
    if (input.dim() < 1 || input.size(-1) != k) return Fused::reference;
    const auto types = call_types(input.scalar_type(), requested, compute, out_dtype);

    at::Tensor x = input.scalar_type() == compute ? input : input.to(compute);
    x = x.reshape({-1, k});
    if (!x.is_contiguous()) x = x.contiguous();
    const int64_t rows = x.size(0);
    std::vector<int64_t> out_shape = input.sizes().vec();
    out_shape.back() = n;

    at::Tensor out = at::empty({rows, n}, x.options().dtype(types.dst));
    const SecondOperand second =
        prepare_second(ops, other, in_place, x, out_shape, types.result, out);
    if (!second.fusable) return Fused::split;

    const memory::desc src_md = md_of(x), dst_md = md_of(out);
    const int threads = omp_threads();
    KeyBuilder key;
    key.add(rows)
        .add(static_cast<int64_t>(types.dst))
        .add(ops.key())
        .add(static_cast<int64_t>(threads));
    if (second.binary.defined()) key.add(second.binary_md);
    const memory::desc b_md =
        bias ? bias_md(matmul ? memory::dims{1, n} : memory::dims{n}) : memory::desc();

    auto make = [&]() {
        LinearEntry e;
        try {
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            attr.set_post_ops(ops.to_dnnl(second.binary_md));
            if (matmul) {
                memory::desc wmd_any({k, n}, to_dnnl(compute), memory::format_tag::any);
                dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(src_md, wmd_any, b_md, dst_md),
                                                attr, cpu_engine());
                e.prim = dnnl::matmul(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = weights->get(pd.weights_desc());
            } else {
                memory::desc wmd_any({n, k}, to_dnnl(compute), memory::format_tag::any);
                dnnl::inner_product_forward::desc d(dnnl::prop_kind::forward_inference, src_md,
                                                    wmd_any, b_md, dst_md);
                dnnl::inner_product_forward::primitive_desc pd(d, attr, cpu_engine());
                e.prim = dnnl::inner_product_forward(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = weights->get(pd.weights_desc());
            }
        } catch (const dnnl::error&) {
            // No oneDNN kernel for this call: remembered, and the reference runs instead.
            e = LinearEntry();
            e.unsupported = true;
        }
        return e;
    };
    auto entry = cache.get(key.str(), threads, make);
    if (entry->unsupported) return Fused::reference;

    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, wrap(src_md, x)},
        {DNNL_ARG_WEIGHTS, wrap(entry->weights.md, entry->weights.buf)},
        {DNNL_ARG_DST, wrap(dst_md, out)}};
    if (bias) args.emplace(DNNL_ARG_BIAS, wrap(b_md, *bias));
    if (second.binary.defined())
        args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.binary_index()) | DNNL_ARG_SRC_1,
                     wrap(second.binary_md, second.binary));
    run_primitive(
        op,
        [&] {
            return "input " + shape_str(input.sizes()) + " weight " + shape_str({n, k});
        },
        *entry, std::move(args));
    result = finish(out.view(out_shape), ops, other, in_place, types.result);
    return Fused::done;
}

}  // namespace ipex::kernels
