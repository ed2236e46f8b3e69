#include "ipex/kernels/layer_norm.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "dnnl_glue.h"

namespace ipex::kernels {

using namespace detail;
using dnnl::memory;

at::Tensor layer_norm_last_dim(const at::Tensor& input, const c10::optional<at::Tensor>& weight,
                               const c10::optional<at::Tensor>& bias, double eps) {
    const char* op = "ipex layer_norm";
    TORCH_CHECK(input.dim() >= 1, op, ": expected a tensor with at least one dimension");
    TORCH_CHECK(input.scalar_type() == c10::kFloat || input.scalar_type() == c10::kBFloat16, op,
                ": expected a float32 or bfloat16 input, got ", input.scalar_type());
    const bool affine = weight.has_value() && weight->defined();
    TORCH_CHECK(affine == (bias.has_value() && bias->defined()), op,
                ": weight and bias must be given together");
    const int64_t width = input.size(-1);
    at::Tensor scale, shift;
    if (affine) {
        TORCH_CHECK(weight->numel() == width && bias->numel() == width, op, ": input of size ",
                    shape_str(input.sizes()), " needs weight and bias of ", width,
                    " elements, got ", weight->numel(), " and ", bias->numel());
        scale = weight->to(c10::kFloat).contiguous();
        shift = bias->to(c10::kFloat).contiguous();
    }
    at::Tensor x = input.contiguous();
    at::Tensor out = at::empty_like(x);
    if (x.numel() == 0) return out;
    if (!onednn_computes_in(x.scalar_type()))  // in float32, as oneDNN's bf16 one computes
        return at::layer_norm(x.to(c10::kFloat), {width}, scale, shift, eps).to(x.scalar_type());

    // oneDNN normalises over the last dimension of a 2-d (rows, width) view.
    const memory::desc md({x.numel() / width, width}, to_dnnl(x.scalar_type()),
                          memory::format_tag::ab);
    const int threads = omp_threads();
    KeyBuilder key;
    key.add(md).add(eps).add(static_cast<int64_t>(affine)).add(static_cast<int64_t>(threads));
    auto make = [&]() {
        try {
            const memory::desc stats_md({x.numel() / width}, memory::data_type::f32,
                                        memory::format_tag::a);
            const auto flags =
                affine ? dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift
                       : dnnl::normalization_flags::none;
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_inference, md,
                                                      stats_md, static_cast<float>(eps), flags);
            dnnl::layer_normalization_forward::primitive_desc pd(d, attr, cpu_engine());
            return PrimitiveEntry{dnnl::layer_normalization_forward(pd), pd.scratchpad_desc()};
        } catch (const dnnl::error& err) {
            rethrow_dnnl(op, "input " + shape_str(input.sizes()), err);
        }
    };
    static EntryCache<PrimitiveEntry> cache;
    auto entry = cache.get(key.str(), threads, make);
    std::unordered_map<int, memory> args{{DNNL_ARG_SRC, wrap(md, x)},
                                         {DNNL_ARG_DST, wrap(md, out)}};
    if (affine) {
        const memory::desc param_md({width}, memory::data_type::f32, memory::format_tag::a);
        args.emplace(DNNL_ARG_SCALE, wrap(param_md, scale));
        args.emplace(DNNL_ARG_SHIFT, wrap(param_md, shift));
    }
    run_primitive(
        op, [&] { return "input " + shape_str(input.sizes()); }, *entry, std::move(args));
    return out;
}

}  // namespace ipex::kernels
