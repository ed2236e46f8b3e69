#include "ipex/kernels/softmax.h"

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include "dnnl_glue.h"

namespace ipex::kernels {

using namespace detail;
using dnnl::memory;

at::Tensor& softmax_last_dim_(at::Tensor& x) {
    const char* op = "ipex softmax_";
    TORCH_CHECK(x.dim() >= 1 && x.is_contiguous(), op, ": expected a contiguous tensor, got size ",
                shape_str(x.sizes()), " with strides ", shape_str(x.strides()));
    if (x.numel() == 0) return x;
    if (!onednn_computes_in(x.scalar_type())) return x.copy_(at::softmax(x, -1));
    const memory::desc md = md_of(x);
    const int threads = omp_threads();
    KeyBuilder key;
    key.add(md).add(static_cast<int64_t>(threads));
    auto make = [&]() {
        try {
            dnnl::primitive_attr attr;
            attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
            dnnl::softmax_forward::desc d(dnnl::prop_kind::forward_inference, md,
                                          static_cast<int>(x.dim() - 1));
            dnnl::softmax_forward::primitive_desc pd(d, attr, cpu_engine());
            return PrimitiveEntry{dnnl::softmax_forward(pd), pd.scratchpad_desc()};
        } catch (const dnnl::error& err) {
            rethrow_dnnl(op, "input " + shape_str(x.sizes()), err);
        }
    };
    static EntryCache<PrimitiveEntry> cache;
    auto entry = cache.get(key.str(), threads, make);
    dnnl::memory mem = wrap(md, x);
    run_primitive(op, [&] { return "input " + shape_str(x.sizes()); }, *entry,
                  {{DNNL_ARG_SRC, mem}, {DNNL_ARG_DST, mem}});
    return x;
}

}  // namespace ipex::kernels
