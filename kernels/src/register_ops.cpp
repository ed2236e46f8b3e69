// TORCH_LIBRARY(ipex) registrations: the packed contexts as TorchBind classes (picklable,
// so frozen/saved TorchScript modules keep them) and the prepack/run operators.
#include <torch/custom_class.h>
#include <torch/library.h>

#include <string>
#include <vector>

#include "ipex/kernels/batch_matmul.h"
#include "ipex/kernels/conv_context.h"
#include "ipex/kernels/fusion_pass.h"
#include "ipex/kernels/isa.h"
#include "ipex/kernels/layer_norm.h"
#include "ipex/kernels/linear_context.h"
#include "ipex/kernels/softmax.h"

namespace ipex::kernels {
namespace {

using ConvPtr = c10::intrusive_ptr<ConvContext>;
using LinearPtr = c10::intrusive_ptr<LinearContext>;

ConvPtr conv_prepack(const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                     std::vector<int64_t> stride, std::vector<int64_t> padding_l,
                     std::vector<int64_t> padding_r, std::vector<int64_t> dilation, int64_t groups,
                     bool transposed, std::vector<int64_t> output_padding, c10::ScalarType dtype) {
    ConvGeometry g{std::move(stride),   std::move(padding_l),      std::move(padding_r),
                   std::move(dilation), std::move(output_padding), groups,
                   transposed};
    return c10::make_intrusive<ConvContext>(weight, bias, std::move(g), dtype);
}

at::Tensor conv_run(const at::Tensor& x, const ConvPtr& ctx, const std::string& post_op,
                    std::vector<double> args, const c10::optional<at::Tensor>& other) {
    return ctx->run(x, PostOps::cached(post_op, args), other, /*in_place=*/false);
}

at::Tensor conv_run_(const at::Tensor& x, const ConvPtr& ctx, const std::string& post_op,
                     std::vector<double> args, at::Tensor accum) {
    return ctx->run(x, PostOps::cached(post_op, args), accum, /*in_place=*/true);
}

LinearPtr linear_prepack(const at::Tensor& weight, const c10::optional<at::Tensor>& bias,
                         c10::ScalarType dtype, bool share_weight) {
    return c10::make_intrusive<LinearContext>(weight, bias, dtype, share_weight);
}

at::Tensor linear_run(const at::Tensor& x, const LinearPtr& ctx, const std::string& post_op,
                      std::vector<double> args, const c10::optional<at::Tensor>& other,
                      c10::optional<c10::ScalarType> out_dtype) {
    return ctx->run(x, PostOps::cached(post_op, args), other, /*in_place=*/false, out_dtype);
}

at::Tensor linear_run_(const at::Tensor& x, const LinearPtr& ctx, const std::string& post_op,
                       std::vector<double> args, at::Tensor accum) {
    return ctx->run(x, PostOps::cached(post_op, args), accum, /*in_place=*/true);
}

// Pickled state: (weight, bias, ints, dtype) with ints = stride | pad_l | pad_r | dilation |
// output_padding | groups | transposed, each list prefixed by its length.
using ConvState = std::tuple<at::Tensor, c10::optional<at::Tensor>, std::vector<int64_t>, int64_t>;
using LinearState = std::tuple<at::Tensor, c10::optional<at::Tensor>, int64_t>;

ConvState conv_getstate(const ConvPtr& c) {
    const auto& g = c->geometry();
    std::vector<int64_t> ints;
    for (const auto* v : {&g.stride, &g.padding_l, &g.padding_r, &g.dilation, &g.output_padding}) {
        ints.push_back(static_cast<int64_t>(v->size()));
        ints.insert(ints.end(), v->begin(), v->end());
    }
    ints.push_back(g.groups);
    ints.push_back(g.transposed);
    return {c->weight(), c->bias(), ints, static_cast<int64_t>(c->dtype())};
}

ConvPtr conv_setstate(ConvState s) {
    const auto& ints = std::get<2>(s);
    size_t pos = 0;
    auto take = [&]() {
        const auto n = static_cast<size_t>(ints.at(pos++));
        std::vector<int64_t> v(ints.begin() + pos, ints.begin() + pos + n);
        pos += n;
        return v;
    };
    ConvGeometry g;
    g.stride = take();
    g.padding_l = take();
    g.padding_r = take();
    g.dilation = take();
    g.output_padding = take();
    g.groups = ints.at(pos++);
    g.transposed = ints.at(pos++) != 0;
    return c10::make_intrusive<ConvContext>(std::get<0>(s), std::get<1>(s), std::move(g),
                                            static_cast<c10::ScalarType>(std::get<3>(s)));
}

}  // namespace

TORCH_LIBRARY(ipex, m) {
    m.class_<ConvContext>("ConvContext")
        .def("weight", [](const ConvPtr& c) { return c->weight(); })
        .def("bias", [](const ConvPtr& c) { return c->bias(); })
        .def("cached_primitives", [](const ConvPtr& c) { return c->cached_primitives(); })
        .def("compute_dtype", [](const ConvPtr& c) { return static_cast<int64_t>(c->dtype()); })
        .def_pickle([](const ConvPtr& c) { return conv_getstate(c); },
                    [](ConvState s) { return conv_setstate(std::move(s)); });
    m.class_<LinearContext>("LinearContext")
        .def("weight", [](const LinearPtr& c) { return c->weight(); })
        .def("bias", [](const LinearPtr& c) { return c->bias(); })
        .def("cached_primitives", [](const LinearPtr& c) { return c->cached_primitives(); })
        .def("compute_dtype", [](const LinearPtr& c) { return static_cast<int64_t>(c->dtype()); })
        .def_pickle(
            [](const LinearPtr& c) -> LinearState {
                return {c->weight(), c->bias(), static_cast<int64_t>(c->dtype())};
            },
            [](LinearState s) {
                return c10::make_intrusive<LinearContext>(
                    std::get<0>(s), std::get<1>(s), static_cast<c10::ScalarType>(std::get<2>(s)));
            });

    m.def(
        "conv_prepack(Tensor weight, Tensor? bias, int[] stride, int[] padding_l, int[] padding_r, "
        "int[] dilation, "
        "int groups, bool transposed, int[] output_padding, ScalarType dtype) -> "
        "__torch__.torch.classes.ipex.ConvContext",
        conv_prepack);
    m.def(
        "conv_run(Tensor x, __torch__.torch.classes.ipex.ConvContext ctx, str post_op=\"none\", "
        "float[] args=[], Tensor? other=None) -> Tensor",
        conv_run);
    m.def(
        "conv_run_(Tensor x, __torch__.torch.classes.ipex.ConvContext ctx, str post_op, float[] "
        "args, "
        "Tensor(a!) accum) -> Tensor(a!)",
        conv_run_);
    m.def(
        "linear_prepack(Tensor weight, Tensor? bias, ScalarType dtype, bool share_weight=False) -> "
        "__torch__.torch.classes.ipex.LinearContext",
        linear_prepack);
    m.def(
        "linear_run(Tensor x, __torch__.torch.classes.ipex.LinearContext ctx, str "
        "post_op=\"none\", "
        "float[] args=[], Tensor? other=None, ScalarType? out_dtype=None) -> Tensor",
        linear_run);
    m.def(
        "linear_run_(Tensor x, __torch__.torch.classes.ipex.LinearContext ctx, str post_op, "
        "float[] args, "
        "Tensor(a!) accum) -> Tensor(a!)",
        linear_run_);
    m.def("batch_matmul(Tensor a, Tensor b, float scale=1.0, Tensor(a!)? out=None) -> Tensor",
          batch_matmul);
    m.def("softmax_(Tensor(a!) x) -> Tensor(a!)", softmax_last_dim_);
    m.def("layer_norm(Tensor x, Tensor? weight, Tensor? bias, float eps=1e-05) -> Tensor",
          layer_norm_last_dim);
    m.def("bf16_supported() -> bool", []() { return bf16_supported(); });
    m.def("set_bf16_disabled(bool disabled) -> ()", [](bool d) { set_bf16_disabled(d); });
    m.def("set_jit_fusion(bool enabled) -> ()", [](bool e) { set_jit_fusion_enabled(e); });
    m.def("jit_fusion_enabled() -> bool", []() { return jit_fusion_enabled(); });
}

}  // namespace ipex::kernels
