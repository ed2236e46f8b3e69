#include "ipex/kernels/batch_matmul.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "dnnl_glue.h"

namespace ipex::kernels {

using namespace detail;
using dnnl::memory;

at::Tensor batch_matmul(const at::Tensor& a_in, const at::Tensor& b_in, double scale,
                        const c10::optional<at::Tensor>& out_arg) {
    const char* op = "ipex batch_matmul";
    TORCH_CHECK(a_in.dim() >= 2 && a_in.dim() == b_in.dim(), op,
                ": expected operands of equal rank >= 2, got ", shape_str(a_in.sizes()), " and ",
                shape_str(b_in.sizes()));
    const int64_t nd = a_in.dim();
    TORCH_CHECK(a_in.size(-1) == b_in.size(-2), op, ": cannot multiply ", shape_str(a_in.sizes()),
                " by ", shape_str(b_in.sizes()));
    for (int64_t i = 0; i < nd - 2; ++i)
        TORCH_CHECK(a_in.size(i) == b_in.size(i), op,
                    ": batch dimensions differ: ", shape_str(a_in.sizes()), " and ",
                    shape_str(b_in.sizes()));
    at::Tensor a = a_in,
               b = b_in.scalar_type() == a_in.scalar_type() ? b_in : b_in.to(a_in.scalar_type());
    // oneDNN needs one unit stride among the two innermost dimensions of each operand.
    auto inner_ok = [](const at::Tensor& t) { return t.stride(-1) == 1 || t.stride(-2) == 1; };
    if (!inner_ok(a)) a = a.contiguous();
    if (!inner_ok(b)) b = b.contiguous();
    std::vector<int64_t> out_shape = a.sizes().vec();
    out_shape.back() = b.size(-1);
    at::Tensor out;
    if (out_arg && out_arg->defined()) {
        out = *out_arg;
        TORCH_CHECK(out.sizes().vec() == out_shape && out.scalar_type() == a.scalar_type(), op,
                    ": out has size ", shape_str(out.sizes()), " and type ", out.scalar_type(),
                    ", expected ", shape_str(out_shape), " and ", a.scalar_type());
    } else {
        out = at::empty(out_shape, a.options());
    }
    if (out.numel() == 0) return out;
    if (!onednn_computes_in(a.scalar_type())) {
        at::Tensor product = at::matmul(a, b);
        return out.copy_(scale != 1.0 ? product.mul_(scale) : product);
    }

    const memory::desc a_md = md_of(a), b_md = md_of(b), c_md = md_of(out);
    const int threads = omp_threads();
    KeyBuilder key;
    key.add(a_md).add(b_md).add(c_md).add(scale).add(static_cast<int64_t>(threads));
    auto make = [&]() {
        try {
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            if (scale != 1.0) attr.set_output_scales(0, {static_cast<float>(scale)});
            dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a_md, b_md, c_md), attr,
                                            cpu_engine());
            return PrimitiveEntry{dnnl::matmul(pd), pd.scratchpad_desc()};
        } catch (const dnnl::error& err) {
            rethrow_dnnl(op, shape_str(a.sizes()) + " x " + shape_str(b.sizes()), err);
        }
    };
    // Activations have no packed weights, so one process-wide cache serves every call site.
    static EntryCache<PrimitiveEntry> cache;
    auto entry = cache.get(key.str(), threads, make);
    run_primitive(op, [&] { return shape_str(a.sizes()) + " x " + shape_str(b.sizes()); }, *entry,
                  {{DNNL_ARG_SRC, wrap(a_md, a)},
                   {DNNL_ARG_WEIGHTS, wrap(b_md, b)},
                   {DNNL_ARG_DST, wrap(c_md, out)}});
    return out;
}

}  // namespace ipex::kernels
