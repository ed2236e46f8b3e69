#include "ipex/kernels/conv_context.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <cstdlib>
#include <string>

#include "dnnl_glue.h"
#include "ipex/kernels/isa.h"
#include "layer_call.h"

namespace ipex::kernels {

using namespace detail;
using dnnl::memory;

namespace {

struct ConvEntry : PrimitiveEntry {
    PackedWeights::Copy weights;
    // A primitive on blocked activations (Winograd's only layout; oneDNN's faster one below
    // AVX-512): the input is reordered into `blocked_src` before and the output out of
    // `blocked_dst` after (null when not needed).
    memory::desc blocked_src, blocked_dst;
    dnnl::reorder to_blocked, from_blocked;
    // oneDNN 2.6's gemm-based convolutions read a full-size binary post-op operand wrongly
    // (they are picked e.g. when the padding reaches the kernel size): such calls run split.
    bool binary_unreliable = false;
};

bool gemm_based(const dnnl::primitive_desc_base& pd) {
    return std::string(pd.impl_info_str()).find("gemm") != std::string::npos;
}

// oneDNN wants (g, O/g, I/g, k...) for grouped and (O, I, k...) otherwise; PyTorch stores
// (O, I/g, k...) or, transposed, (I, O/g, k...). Strides describe PyTorch's bytes as is.
memory::desc plain_weight_md(const at::Tensor& w, int64_t groups, bool transposed) {
    const auto dt = to_dnnl(w.scalar_type());
    const int64_t ks = w.dim() - 2;
    memory::dims dims, strides;
    const int64_t o_dim = transposed ? 1 : 0, i_dim = transposed ? 0 : 1;
    const int64_t o = transposed ? w.size(1) * groups : w.size(0);
    const int64_t i = transposed ? w.size(0) : w.size(1) * groups;
    if (groups > 1) {
        dims = {groups, o / groups, i / groups};
        const int64_t g_stride =
            transposed ? (i / groups) * w.stride(0) : (o / groups) * w.stride(0);
        strides = {g_stride, w.stride(o_dim), w.stride(i_dim)};
    } else {
        dims = {o, i};
        strides = {w.stride(o_dim), w.stride(i_dim)};
    }
    for (int64_t k = 0; k < ks; ++k) {
        dims.push_back(w.size(2 + k));
        strides.push_back(w.stride(2 + k));
    }
    return memory::desc(dims, dt, strides);
}

memory::desc any_layout(const memory::desc& md) {
    return memory::desc(md.dims(), md.data_type(), memory::format_tag::any);
}

memory::dims to_dims(const std::vector<int64_t>& v) {
    return memory::dims(v.begin(), v.end());
}

// With IPEX_CONV_WINOGRAD=1, float32 3x3 stride-1 convolutions run on oneDNN's Winograd
// kernels where it has them: 1.3-2x faster here than direct convolution on ResNet's 3x3
// layers, results within ~2e-6 of the output scale. Off by default: its weights are 1.8-4x
// larger and the plain weight must stay beside them (oneDNN cannot reorder out of the
// Winograd layout), and when a model's weights do not fit in cache the extra bytes eat most
// of the gain (ResNet-50 at batch 1: 3-5 %). Read when a primitive is made, which is rare.
bool winograd_allowed() {
    const char* v = std::getenv("IPEX_CONV_WINOGRAD");
    return v && std::string(v) == "1";
}

// Below AVX-512, oneDNN 2.6's direct convolutions are slower on channels-last activations
// than on its blocked layouts. An ungrouped spatial kernel (not 1x1, not depthwise) does
// enough work per activation byte for the difference to outweigh reordering in and out, so
// there such a convolution without a second operand runs on the layout oneDNN picks
// (benchmarks/kernels/conv_layouts.py; README there). IPEX_CONV_LAYOUT=plain or =blocked
// forces the choice.
bool blocked_activations_wanted(const std::vector<int64_t>& wshape, int64_t groups) {
    const char* v = std::getenv("IPEX_CONV_LAYOUT");
    if (v && std::string(v) == "plain") return false;
    if (v && std::string(v) == "blocked") return true;
    int64_t kernel_volume = 1;
    for (size_t k = 2; k < wshape.size(); ++k) kernel_volume *= wshape[k];
    return !avx512_kernels() && kernel_volume > 1 && groups == 1;
}

bool winograd_shape(const std::vector<int64_t>& wshape, const ConvGeometry& g) {
    if (wshape.size() != 4 || g.groups != 1 || g.transposed) return false;
    for (int k = 0; k < 2; ++k)
        if (wshape[2 + k] != 3 || g.stride[k] != 1 || g.dilation[k] != 1) return false;
    return true;
}

}  // namespace

struct ConvContext::Impl {
    std::vector<int64_t> wshape;  // PyTorch weight shape
    int64_t out_channels = 0, in_channels = 0;
    c10::ScalarType requested = c10::kFloat, compute = c10::kFloat;
    std::unique_ptr<PackedWeights> weights;  // null for a reference-only context
    at::Tensor plain;                        // the weight as given, for a reference-only context
    c10::optional<at::Tensor> bias;          // float32 (the weight's dtype if reference-only)
    mutable EntryCache<ConvEntry> cache;

    // The layer on ATen (any input PyTorch's convolution takes), in the compute dtype.
    at::Tensor reference(const at::Tensor& x, const ConvGeometry& g) const;
    // The oneDNN call; see run_layer().
    Fused fused(const at::Tensor& input, const ConvGeometry& g, const PostOps& ops,
                const c10::optional<at::Tensor>& other, bool in_place, at::Tensor& result) const;
};

ConvContext::ConvContext(const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                         ConvGeometry geo, c10::ScalarType dtype)
    : impl_(std::make_unique<Impl>()), geo_(std::move(geo)) {
    const int64_t nd = weight.dim() - 2;
    TORCH_CHECK(nd >= 1 && nd <= 3, "ipex conv_prepack: weight must be 3-D, 4-D or 5-D, got ",
                shape_str(weight.sizes()));
    auto fill = [nd](std::vector<int64_t>& v, int64_t dflt, const char* name) {
        if (v.empty()) v.assign(nd, dflt);
        if (v.size() == 1 && nd > 1) v.assign(nd, v[0]);
        TORCH_CHECK(static_cast<int64_t>(v.size()) == nd, "ipex conv_prepack: ", name, " needs ",
                    nd, " values");
    };
    fill(geo_.stride, 1, "stride");
    fill(geo_.padding_l, 0, "padding");
    fill(geo_.padding_r, 0, "padding");
    fill(geo_.dilation, 1, "dilation");
    fill(geo_.output_padding, 0, "output_padding");
    TORCH_CHECK(geo_.groups >= 1, "ipex conv_prepack: groups must be positive");
    // oneDNN sees output_padding as less right padding, which must stay above -stride.
    bool onednn_geometry = true;
    for (int64_t k = 0; k < nd; ++k) {
        TORCH_CHECK(geo_.stride[k] >= 1 && geo_.dilation[k] >= 1,
                    "ipex conv_prepack: stride and dilation must be positive");
        if (geo_.transposed)
            onednn_geometry =
                onednn_geometry && geo_.padding_r[k] - geo_.output_padding[k] + geo_.stride[k] > 0;
    }
    auto& m = *impl_;
    m.wshape = weight.sizes().vec();
    m.requested = dtype;
    m.out_channels = geo_.transposed ? weight.size(1) * geo_.groups : weight.size(0);
    m.in_channels = geo_.transposed ? weight.size(0) : weight.size(1) * geo_.groups;
    TORCH_CHECK((geo_.transposed ? m.in_channels : m.out_channels) % geo_.groups == 0,
                "ipex conv_prepack: channels must be divisible by groups (", geo_.groups, ")");
    const bool packable = onednn_geometry && kernel_dtype(dtype);
    m.compute = packable ? compute_dtype(dtype, "ipex conv_prepack") : dtype;
    at::Tensor w = weight.detach().to(m.compute).contiguous();
    if (packable)
        m.weights =
            std::make_unique<PackedWeights>(w, plain_weight_md(w, geo_.groups, geo_.transposed));
    else
        m.plain = w;
    if (bias && bias->defined()) {
        TORCH_CHECK(bias->numel() == m.out_channels, "ipex conv_prepack: bias of size ",
                    shape_str(bias->sizes()), " does not match ", m.out_channels,
                    " output channels");
        m.bias = bias->detach().to(packable ? at::kFloat : m.compute).contiguous();
    }
}

ConvContext::~ConvContext() = default;

c10::ScalarType ConvContext::dtype() const {
    return impl_->compute;
}
int64_t ConvContext::cached_primitives() const {
    return impl_->cache.size();
}
at::Tensor ConvContext::weight() const {
    if (!impl_->weights) return impl_->plain.clone();
    return impl_->weights->unpack(impl_->wshape);
}
c10::optional<at::Tensor> ConvContext::bias() const {
    if (!impl_->bias) return c10::nullopt;
    return impl_->bias->clone();
}

at::Tensor ConvContext::run(const at::Tensor& input, const PostOps& ops,
                            const c10::optional<at::Tensor>& other, bool in_place) const {
    const auto& m = *impl_;
    return run_layer(
        ops, other, in_place, m.weights && kernels_take(input, other),
        [&](const PostOps& chain, at::Tensor& out) {
            return m.fused(input, geo_, chain, other, in_place, out);
        },
        [&] {
            const auto types = call_types(input.scalar_type(), m.requested, m.compute, {});
            at::Tensor y = m.reference(reference_input(input, m.compute), geo_);
            return y.scalar_type() == types.result || !kernel_dtype(y.scalar_type())
                       ? y
                       : y.to(types.result);
        });
}

at::Tensor ConvContext::Impl::reference(const at::Tensor& x, const ConvGeometry& g) const {
    const at::Tensor w = (weights ? weights->unpack(wshape) : plain).to(reference_type(compute));
    c10::optional<at::Tensor> b;
    if (bias) b = bias->to(w.scalar_type());
    if (g.transposed)
        return at::convolution(x, w, b, g.stride, g.padding_l, g.dilation, true, g.output_padding,
                               g.groups);
    // Uneven padding ("same" with an even kernel extent): the extra goes in explicitly, as
    // PyTorch does.
    std::vector<int64_t> even(g.padding_l.size()), extra;
    bool uneven = false;
    for (size_t k = g.padding_l.size(); k-- > 0;) {
        even[k] = std::min(g.padding_l[k], g.padding_r[k]);
        extra.push_back(g.padding_l[k] - even[k]);
        extra.push_back(g.padding_r[k] - even[k]);
        uneven = uneven || g.padding_l[k] != g.padding_r[k];
    }
    const at::Tensor padded = uneven ? at::constant_pad_nd(x, extra, 0) : x;
    return at::convolution(padded, w, b, g.stride, even, g.dilation, false, g.output_padding,
                           g.groups);
}

Fused ConvContext::Impl::fused(const at::Tensor& input, const ConvGeometry& g, const PostOps& ops,
                               const c10::optional<at::Tensor>& other, bool in_place,
                               at::Tensor& result) const {
    const int64_t nd = static_cast<int64_t>(wshape.size()) - 2;
    const char* op = g.transposed ? "ipex conv_transpose" : "ipex convolution";
    // Shapes PyTorch refuses go to the reference, which raises PyTorch's own error.
    if (input.dim() != nd + 2 || input.size(1) != in_channels) return Fused::reference;
    const auto types = call_types(input.scalar_type(), requested, compute, {});

    // 2-D/3-D run channels-last (oneDNN's fast layout, as PyTorch does for channels-last
    // weights); 1-D keeps the caller's layout.
    at::Tensor x = input.scalar_type() == compute ? input : input.to(compute);
    c10::optional<c10::MemoryFormat> cl;
    if (nd == 2) cl = c10::MemoryFormat::ChannelsLast;
    if (nd == 3) cl = c10::MemoryFormat::ChannelsLast3d;
    bool nwc = false;
    if (cl) {
        if (!x.is_contiguous(*cl)) x = x.contiguous(*cl);
    } else {
        nwc = x.stride(1) == 1 && x.stride(2) == x.size(1) && x.size(1) > 1;
        if (!nwc && !x.is_contiguous()) x = x.contiguous();
    }

    std::vector<int64_t> out_shape{x.size(0), out_channels};
    for (int64_t k = 0; k < nd; ++k) {
        const int64_t in = x.size(2 + k), ker = wshape[2 + k], d = g.dilation[k];
        int64_t o;
        if (g.transposed) {
            o = (in - 1) * g.stride[k] - g.padding_l[k] - g.padding_r[k] + d * (ker - 1) +
                g.output_padding[k] + 1;
        } else {
            if (in + g.padding_l[k] + g.padding_r[k] < d * (ker - 1) + 1) return Fused::reference;
            o = (in + g.padding_l[k] + g.padding_r[k] - d * (ker - 1) - 1) / g.stride[k] + 1;
        }
        if (o <= 0) return Fused::reference;
        out_shape.push_back(o);
    }
    auto opts = x.options().dtype(types.dst);
    at::Tensor out;
    if (cl) {
        out = at::empty(out_shape, opts.memory_format(*cl));
    } else if (nwc) {
        out = at::empty({out_shape[0], out_shape[2], out_shape[1]}, opts).permute({0, 2, 1});
    } else {
        out = at::empty(out_shape, opts);
    }
    const SecondOperand second =
        prepare_second(ops, other, in_place, x, out_shape, types.result, out);
    if (!second.fusable) return Fused::split;

    const memory::desc src_md = md_of(x), dst_md = md_of(out);
    const int threads = omp_threads();
    KeyBuilder key;
    key.add(src_md).add(dst_md).add(ops.key()).add(static_cast<int64_t>(threads));
    if (second.binary.defined()) key.add(second.binary_md);

    const bool full_binary = second.binary.defined() && second.binary.numel() > out_channels;
    auto make = [&]() {
        ConvEntry e;
        try {
            memory::desc wmd_any(weights->plain_md().dims(), to_dnnl(compute),
                                 memory::format_tag::any);
            memory::desc b_md = bias ? bias_md({out_channels}) : memory::desc();
            memory::dims dil = to_dims(g.dilation);
            for (auto& d : dil) d -= 1;  // oneDNN counts dilation from 0
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            attr.set_post_ops(ops.to_dnnl(second.binary_md));
            const auto& eng = cpu_engine();
            if (g.transposed) {
                // PyTorch's output_padding extends the output on the right: oneDNN sees it as less
                // right padding.
                memory::dims pad_r = to_dims(g.padding_r);
                for (size_t k = 0; k < pad_r.size(); ++k) pad_r[k] -= g.output_padding[k];
                dnnl::deconvolution_forward::desc d(dnnl::prop_kind::forward_inference,
                                                    dnnl::algorithm::deconvolution_direct, src_md,
                                                    wmd_any, b_md, dst_md, to_dims(g.stride), dil,
                                                    to_dims(g.padding_l), pad_r);
                dnnl::deconvolution_forward::primitive_desc pd(d, attr, eng);
                e.binary_unreliable = full_binary && gemm_based(pd);
                e.prim = dnnl::deconvolution_forward(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = weights->get(pd.weights_desc());
            } else {
                auto describe = [&](dnnl::algorithm algorithm, const memory::desc& src,
                                    const memory::desc& dst) {
                    dnnl::convolution_forward::desc d(
                        dnnl::prop_kind::forward_inference, algorithm, src, wmd_any, b_md, dst,
                        to_dims(g.stride), dil, to_dims(g.padding_l), to_dims(g.padding_r));
                    return dnnl::convolution_forward::primitive_desc(d, attr, eng);
                };
                // A primitive on the layouts oneDNN picks, with reorders where they are not
                // PyTorch's; none where it cannot be made (or where `acceptable` refuses it).
                const auto on_own_layouts = [&](dnnl::algorithm algorithm, auto acceptable) {
                    try {
                        auto chosen = describe(algorithm, any_layout(src_md), any_layout(dst_md));
                        if (!acceptable(chosen)) return dnnl::convolution_forward::primitive_desc();
                        if (chosen.src_desc() != src_md) {
                            e.blocked_src = chosen.src_desc();
                            e.to_blocked = dnnl::reorder(
                                dnnl::reorder::primitive_desc(eng, src_md, eng, e.blocked_src));
                        }
                        if (chosen.dst_desc() != dst_md) {
                            e.blocked_dst = chosen.dst_desc();
                            e.from_blocked = dnnl::reorder(
                                dnnl::reorder::primitive_desc(eng, e.blocked_dst, eng, dst_md));
                        }
                        return chosen;
                    } catch (const dnnl::error&) {  // no such kernel for this case
                        e = ConvEntry();
                        return dnnl::convolution_forward::primitive_desc();
                    }
                };
                // The output must come back into `out` (no accumulator, no second operand).
                const bool output_only = !ops.has_sum() && !second.binary.defined();
                dnnl::convolution_forward::primitive_desc pd;
                if (compute == c10::kFloat && winograd_allowed() && winograd_shape(wshape, g) &&
                    output_only)
                    pd = on_own_layouts(dnnl::algorithm::convolution_winograd,
                                        [](const auto&) { return true; });
                if (!pd && output_only && blocked_activations_wanted(wshape, g.groups))
                    pd = on_own_layouts(dnnl::algorithm::convolution_direct, [&](const auto& p) {
                        // Worth it only for a jit kernel on layouts other than PyTorch's.
                        return !gemm_based(p) && (p.src_desc() != src_md || p.dst_desc() != dst_md);
                    });
                if (!pd) pd = describe(dnnl::algorithm::convolution_direct, src_md, dst_md);
                e.binary_unreliable = full_binary && gemm_based(pd);
                e.prim = dnnl::convolution_forward(pd);
                e.scratch_md = pd.scratchpad_desc();
                e.weights = weights->get(pd.weights_desc());
            }
        } catch (const dnnl::error&) {
            // No oneDNN kernel for this geometry: remembered, and the reference runs instead.
            e = ConvEntry();
            e.unsupported = true;
        }
        return e;
    };
    auto entry = cache.get(key.str(), threads, make);
    if (entry->unsupported) return Fused::reference;
    if (entry->binary_unreliable) return Fused::split;

    const auto describe_call = [&] {
        return "input " + shape_str(input.sizes()) + " weight " + shape_str(wshape);
    };
    auto reorder = [&](const dnnl::reorder& prim, memory from, memory to) {
        try {
            prim.execute(thread_stream(), from, to);
            thread_stream().wait();
        } catch (const dnnl::error& err) {
            rethrow_dnnl(op, describe_call(), err);
        }
    };
    memory src = wrap(src_md, x), dst = wrap(dst_md, out);
    at::Tensor blocked_src, blocked_dst;  // keep the reordered activations alive
    if (entry->to_blocked) {
        blocked_src =
            at::empty({static_cast<int64_t>(entry->blocked_src.get_size())}, opts.dtype(at::kByte));
        memory into(entry->blocked_src, cpu_engine(), blocked_src.data_ptr());
        reorder(entry->to_blocked, src, into);
        src = into;
    }
    if (entry->from_blocked) {
        blocked_dst =
            at::empty({static_cast<int64_t>(entry->blocked_dst.get_size())}, opts.dtype(at::kByte));
        dst = memory(entry->blocked_dst, cpu_engine(), blocked_dst.data_ptr());
    }
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, src},
        {DNNL_ARG_WEIGHTS, wrap(entry->weights.md, entry->weights.buf)},
        {DNNL_ARG_DST, dst}};
    if (bias) args.emplace(DNNL_ARG_BIAS, wrap(bias_md({out_channels}), *bias));
    if (second.binary.defined())
        args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(ops.binary_index()) | DNNL_ARG_SRC_1,
                     wrap(second.binary_md, second.binary));
    run_primitive(op, describe_call, *entry, std::move(args));
    if (entry->from_blocked) reorder(entry->from_blocked, dst, wrap(dst_md, out));
    result = finish(out, ops, other, in_place, types.result);
    return Fused::done;
}

}  // namespace ipex::kernels
