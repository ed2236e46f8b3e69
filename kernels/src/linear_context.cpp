#include "ipex/kernels/linear_context.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <omp.h>

#include <cstdlib>
#include <exception>
#include <string>

#include "dnnl_glue.h"
#include "layer_call.h"

namespace ipex::kernels {

using namespace detail;
using dnnl::memory;

namespace {

struct LinearEntry : PrimitiveEntry {
    PackedWeights::Copy weights;
    // Column blocks (see column_blocks()): `prim` computes output columns [0, block), `last`
    // the narrower final block if any. block == 0: `prim` computes the whole output.
    int64_t block = 0;
    PrimitiveEntry last;
};

// Output columns per block when the call runs as column blocks taken one at a time by the
// OpenMP team (schedule dynamic), each a single-threaded primitive, instead of one
// primitive that splits its work statically between the threads. With a static split every
// call waits for its slowest thread: on a shared machine (other processes, or the OS's
// per-session fair share leaving this process less than a core per thread) one descheduled
// thread stalls the whole call while the others spin at its barrier, and fp32 BERT ran at
// 1/3 of the single-thread speed that way. With blocks, a thread that is running keeps
// taking work. About four blocks per thread, a multiple of 16 columns (whole vector
// registers), at least 64 wide; 0: not worth splitting.
int64_t column_blocks(int64_t n, int threads) {
    if (threads < 2) return 0;
    const int64_t wanted = 4 * static_cast<int64_t>(threads);
    const int64_t width = std::max<int64_t>(64, (n + wanted - 1) / wanted + 15) / 16 * 16;
    return width < n ? width : 0;
}

// The descriptor of columns [col, col + width) of a 2-D plain (strided) descriptor, and the
// byte offset where they start. An operand with one column (a per-row or scalar broadcast)
// is the same for every block.
std::pair<memory::desc, size_t> column_slice(const memory::desc& md, int64_t col, int64_t width) {
    const auto& d = md.data;
    if (d.dims[1] == 1) return {md, 0};
    const memory::dims strides(d.format_desc.blocking.strides, d.format_desc.blocking.strides + 2);
    const auto type = static_cast<memory::data_type>(d.data_type);
    return {memory::desc({d.dims[0], width}, type, strides),
            static_cast<size_t>(col * strides[1]) * memory::data_type_size(type)};
}

}  // namespace

struct LinearContext::Impl {
    int64_t n = 0, k = 0;
    c10::ScalarType requested = c10::kFloat, compute = c10::kFloat;
    std::unique_ptr<PackedWeights> weights;  // null for a reference-only context
    at::Tensor plain;                        // the weight as given, for a reference-only context
    c10::optional<at::Tensor> bias;          // float32 (the weight's dtype if reference-only)
    bool matmul = true;  // dnnl::matmul (weights seen as K x N) rather than inner_product
    bool blocks = true;  // may run as column blocks (column_blocks())
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
// IPEX_LINEAR_BLOCKS=0: one primitive per call, split statically by oneDNN (for comparison).
bool allow_blocks() {
    const char* env = std::getenv("IPEX_LINEAR_BLOCKS");
    return env == nullptr || std::string(env) != "0";
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
    // The caller's own tensor when it is contiguous in the compute type: kernels that take a
    // plain layout read it where it is (see reading_weight_as_given).
    at::Tensor w = weight.detach().to(m.compute).contiguous();
    m.matmul = prefer_matmul();
    m.blocks = allow_blocks();
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
                // A plain-layout kernel (gemm-based, e.g. AVX2) reads the (N, K) weight as the
                // layer holds it, as a transposed K x N matrix: no copy beside the user's.
                const auto pd = reading_weight_as_given(
                    [&](const memory::desc& wmd) {
                        return dnnl::matmul::primitive_desc(
                            dnnl::matmul::desc(src_md, wmd, b_md, dst_md), attr, cpu_engine());
                    },
                    memory::desc({k, n}, to_dnnl(compute), memory::format_tag::any),
                    weights->plain_md());
                e.prim = dnnl::matmul(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = weights->get(pd.weights_desc());
                // Blocks read column slices of the weight (rows of the user's (N, K) one):
                // only where the kernel wants it plain (gemm-based kernels; packed layouts,
                // e.g. AVX-512 brgemm, run whole).
                const int64_t block = blocks ? column_blocks(n, threads) : 0;
                if (block > 0 && is_plain_layout(e.weights.md)) {
                    auto block_prim = [&](int64_t width) {
                        dnnl::primitive_attr battr;
                        battr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
                        battr.set_post_ops(ops.to_dnnl(
                            second.binary.defined() ? column_slice(second.binary_md, 0, width).first
                                                    : memory::desc()));
                        dnnl::matmul::primitive_desc bpd(
                            dnnl::matmul::desc(src_md, column_slice(e.weights.md, 0, width).first,
                                               bias ? column_slice(b_md, 0, width).first : b_md,
                                               column_slice(dst_md, 0, width).first),
                            battr, cpu_engine());
                        return PrimitiveEntry{dnnl::matmul(bpd), bpd.scratchpad_desc()};
                    };
                    const PrimitiveEntry first = block_prim(block);
                    e.prim = first.prim;
                    e.scratch_md = first.scratch_md;
                    if (n % block != 0) e.last = block_prim(n % block);
                    e.block = block;
                }
            } else {
                const auto pd = reading_weight_as_given(
                    [&](const memory::desc& wmd) {
                        return dnnl::inner_product_forward::primitive_desc(
                            dnnl::inner_product_forward::desc(dnnl::prop_kind::forward_inference,
                                                              src_md, wmd, b_md, dst_md),
                            attr, cpu_engine());
                    },
                    memory::desc({n, k}, to_dnnl(compute), memory::format_tag::any),
                    weights->plain_md());
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

    auto describe = [&] {
        return "input " + shape_str(input.sizes()) + " weight " + shape_str({n, k});
    };
    // The arguments of the block of output columns [col, col + width) (the whole output for
    // col 0, width n).
    auto block_args = [&](int64_t col, int64_t width) {
        auto slice = [&](int arg, const memory::desc& md, const at::Tensor& t) {
            const auto [block_md, offset] = column_slice(md, col, width);
            return std::make_pair(
                arg, memory(block_md, cpu_engine(), static_cast<char*>(t.data_ptr()) + offset));
        };
        std::unordered_map<int, memory> args{
            {DNNL_ARG_SRC, wrap(src_md, x)},
            slice(DNNL_ARG_WEIGHTS, entry->weights.md, entry->weights.buf),
            slice(DNNL_ARG_DST, dst_md, out)};
        if (bias) args.insert(slice(DNNL_ARG_BIAS, b_md, *bias));
        if (second.binary.defined())
            args.insert(slice(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.binary_index()) | DNNL_ARG_SRC_1,
                              second.binary_md, second.binary));
        return args;
    };
    if (entry->block == 0) {
        run_primitive(op, describe, *entry, block_args(0, n));
    } else {
        const int64_t blocks = (n + entry->block - 1) / entry->block;
        std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int64_t i = 0; i < blocks; ++i) {
            // Inside the team oneDNN runs each block on the calling thread alone.
            try {
                const int64_t col = i * entry->block;
                const int64_t width = std::min(entry->block, n - col);
                run_primitive(op, describe, width == entry->block ? *entry : entry->last,
                              block_args(col, width));
            } catch (...) {
#pragma omp critical(ipex_linear_block_failure)
                if (!failure) failure = std::current_exception();
            }
        }
        if (failure) std::rethrow_exception(failure);
    }
    result = finish(out.view(out_shape), ops, other, in_place, types.result);
    return Fused::done;
}

}  // namespace ipex::kernels
