#include "ipex/kernels/fusion_pass.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/pass_manager.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "graph_layouts.h"
#include "ipex/kernels/conv_context.h"
#include "ipex/kernels/linear_context.h"

namespace ipex::kernels {
namespace {

using c10::Symbol;
using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

std::atomic<bool> g_enabled{false};

// The profiling executor runs pre-passes on a graph whose values pass through prim::profile
// nodes; look through them rather than removing them (later passes use their type info).
Value* strip(Value* v) {
    while (v->node()->kind() == c10::prim::profile) v = v->node()->input(0);
    return v;
}

c10::optional<c10::IValue> constant(Value* v) {
    return torch::jit::toIValue(strip(v));
}

// The one real consumer of `v` (skipping single-use profile nodes, which go to `chain`), and
// in `fed` the value it reads; nullptr if there is not exactly one.
Node* sole_user(Value* v, Value*& fed, std::vector<Node*>& chain) {
    while (v->uses().size() == 1 && v->uses()[0].user->kind() == c10::prim::profile) {
        chain.push_back(v->uses()[0].user);
        v = v->uses()[0].user->output();
    }
    if (v->uses().size() != 1) return nullptr;
    fed = v;
    return v->uses()[0].user;
}

c10::optional<std::vector<int64_t>> const_ints(Value* v) {
    auto iv = constant(v);
    if (!iv || !iv->isIntList()) return c10::nullopt;
    return iv->toIntVector();
}

c10::optional<double> const_scalar(Value* v) {
    auto iv = constant(v);
    if (!iv) return c10::nullopt;
    if (iv->isDouble()) return iv->toDouble();
    if (iv->isInt()) return static_cast<double>(iv->toInt());
    return c10::nullopt;
}

// A frozen constant, also seen through the cast that tracing under CPU autocast records
// (aten::_autocast_to_reduced_precision(t, cpu_enabled, cuda_enabled, cpu_dtype, cuda_dtype)):
// the cast is applied here once, so a bf16-autocast graph gets bf16 packed weights.
c10::optional<c10::IValue> weight_constant(Value* v) {
    Node* cast = strip(v)->node();
    if (cast->kind() == Symbol::fromQualString("aten::_autocast_to_reduced_precision") &&
        cast->inputs().size() == 5) {
        auto t = constant(cast->input(0));
        auto on = constant(cast->input(1));
        auto dt = constant(cast->input(3));
        if (!t || !on || !dt) return c10::nullopt;
        if (t->isNone()) return t;
        if (!t->isTensor() || !on->isBool() || !dt->isInt()) return c10::nullopt;
        if (!on->toBool() || !t->toTensor().is_floating_point()) return t;
        return c10::IValue(t->toTensor().to(static_cast<c10::ScalarType>(dt->toInt())));
    }
    return constant(v);
}

// The weight (and optional bias) of a conv/linear node, when both are frozen constants.
bool const_weight_bias(Node* n, at::Tensor& w, c10::optional<at::Tensor>& b) {
    auto wi = weight_constant(n->input(1));
    auto bi = weight_constant(n->input(2));
    if (!wi || !wi->isTensor() || !bi || !(bi->isNone() || bi->isTensor())) return false;
    w = wi->toTensor();
    if (w.scalar_type() != at::kFloat && w.scalar_type() != at::kBFloat16) return false;
    if (bi->isTensor()) b = bi->toTensor();
    return true;
}

// Builds a prepacked context for a matched node; nullopt when the node is not a candidate.
c10::optional<c10::IValue> make_context(Node* n, bool& is_conv) {
    at::Tensor w;
    c10::optional<at::Tensor> b;
    const std::string kind = n->kind().toQualString();
    if (kind == "aten::linear") {
        if (!const_weight_bias(n, w, b) || w.dim() != 2) return c10::nullopt;
        is_conv = false;
        return c10::IValue(c10::make_intrusive<LinearContext>(w, b, w.scalar_type()));
    }
    ConvGeometry g;
    c10::optional<std::vector<int64_t>> stride, pad, dil, outpad;
    c10::optional<c10::IValue> groups;
    if (kind == "aten::conv1d" || kind == "aten::conv2d" || kind == "aten::conv3d") {
        if (n->inputs().size() != 7) return c10::nullopt;
        stride = const_ints(n->input(3)), pad = const_ints(n->input(4)),
        dil = const_ints(n->input(5));
        groups = constant(n->input(6));
    } else if (kind == "aten::conv_transpose1d" || kind == "aten::conv_transpose2d" ||
               kind == "aten::conv_transpose3d") {
        if (n->inputs().size() != 8) return c10::nullopt;
        stride = const_ints(n->input(3)), pad = const_ints(n->input(4)),
        outpad = const_ints(n->input(5));
        groups = constant(n->input(6)), dil = const_ints(n->input(7));
        g.transposed = true;
    } else if (kind == "aten::_convolution") {
        if (n->inputs().size() < 9) return c10::nullopt;
        stride = const_ints(n->input(3)), pad = const_ints(n->input(4)),
        dil = const_ints(n->input(5));
        auto tr = constant(n->input(6));
        if (!tr || !tr->isBool()) return c10::nullopt;
        g.transposed = tr->toBool();
        outpad = const_ints(n->input(7));
        groups = constant(n->input(8));
    } else {
        return c10::nullopt;
    }
    if (!const_weight_bias(n, w, b) || w.dim() < 3 || w.dim() > 5) return c10::nullopt;
    if (!stride || !pad || !dil || !groups || !groups->isInt()) return c10::nullopt;
    g.stride = *stride;
    g.padding_l = *pad;
    g.padding_r = *pad;
    g.dilation = *dil;
    g.groups = groups->toInt();
    if (outpad) g.output_padding = *outpad;
    if (g.transposed) {
        // Same guard as ConvContext: oneDNN cannot express padding - output_padding + stride <= 0.
        for (size_t k = 0; k < g.padding_r.size(); ++k) {
            const int64_t op = k < g.output_padding.size() ? g.output_padding[k] : 0;
            if (g.padding_r[k] - op + g.stride[std::min(k, g.stride.size() - 1)] <= 0)
                return c10::nullopt;
        }
    }
    is_conv = true;
    return c10::IValue(c10::make_intrusive<ConvContext>(w, b, std::move(g), w.scalar_type()));
}

// Maps a single-use eltwise consumer to (post-op name, scalars); false when not fusable.
bool eltwise_spec(Node* e, Value* produced, std::string& name, std::vector<double>& args) {
    if (e->inputs().empty() || e->input(0) != produced) return false;
    std::string k = e->kind().toQualString();
    if (k.rfind("aten::", 0) != 0) return false;
    k = k.substr(6);
    if (!k.empty() && k.back() == '_') k.pop_back();  // in-place forms act on our fresh output
    static const std::vector<std::string> unary{"relu",   "sigmoid", "tanh",      "mish",
                                                "abs",    "exp",     "hardswish", "hardsigmoid",
                                                "square", "sqrt",    "log",       "silu"};
    for (const auto& u : unary)
        if (k == u && e->inputs().size() == 1) {
            name = u;
            return true;
        }
    if (k == "round" && e->inputs().size() == 1) return name = "round", true;
    if (k == "gelu" && e->inputs().size() == 2) {
        auto a = constant(e->input(1));
        if (!a || !a->isString()) return false;
        if (a->toStringRef() == "none") return name = "gelu_erf", true;
        if (a->toStringRef() == "tanh") return name = "gelu_tanh", true;
        return false;
    }
    if (k == "leaky_relu" && e->inputs().size() == 2) {
        auto s = const_scalar(e->input(1));
        if (!s) return false;
        return name = "leaky_relu", args = {*s}, true;
    }
    if ((k == "hardtanh" || k == "clamp") && e->inputs().size() == 3) {
        auto lo = const_scalar(e->input(1)), hi = const_scalar(e->input(2));
        if (!lo || !hi) return false;  // clamp with a missing bound stays unfused
        return name = "clamp", args = {*lo, *hi}, true;
    }
    if (k == "elu" && e->inputs().size() == 4) {
        auto a = const_scalar(e->input(1)), s = const_scalar(e->input(2)),
             is = const_scalar(e->input(3));
        if (!a || !s || !is || *s != 1.0 || *is != 1.0) return false;
        return name = "elu", args = {*a}, true;
    }
    if (k == "pow" && e->inputs().size() == 2 &&
        e->input(1)->type()->kind() != c10::TypeKind::TensorType) {
        auto p = const_scalar(e->input(1));
        if (!p) return false;
        return name = "pow", args = {*p}, true;
    }
    return false;
}

int fuse_block(Block* block, Graph& graph) {
    int replaced = 0;
    std::vector<Node*> candidates;
    for (Node* n : block->nodes()) {
        for (Block* sub : n->blocks()) replaced += fuse_block(sub, graph);
        candidates.push_back(n);
    }
    // Replaced nodes are destroyed after the walk (candidates must stay valid during it).
    std::vector<std::vector<Node*>> dead;
    const auto add = Symbol::fromQualString("aten::add"),
               add_ = Symbol::fromQualString("aten::add_");
    const auto relu = Symbol::fromQualString("aten::relu"),
               relu_ = Symbol::fromQualString("aten::relu_");
    for (Node* n : candidates) {
        bool is_conv = false;
        auto ctx = make_context(n, is_conv);
        if (!ctx) continue;
        std::string spec = "none";
        std::vector<double> args;
        Value* other = nullptr;
        std::vector<Node*> chain{n}, tail;
        Value* fed = nullptr;
        Node* user = sole_user(n->output(), fed, tail);
        std::string name;
        std::vector<double> a;
        if (user != nullptr && user->owningBlock() == block && eltwise_spec(user, fed, name, a)) {
            // conv/linear -> eltwise
            spec = name, args = a;
            chain.insert(chain.end(), tail.begin(), tail.end());
            chain.push_back(user);
        } else if (user != nullptr && user->owningBlock() == block &&
                   (user->kind() == add || user->kind() == add_) && user->inputs().size() == 3 &&
                   user->input(0) == fed && strip(user->input(1)) != strip(fed) &&
                   user->input(1)->type()->kind() == c10::TypeKind::TensorType &&
                   !constant(user->input(1))) {
            // conv/linear + other (+ relu): oneDNN binary add broadcasts and never writes `other`.
            auto alpha = const_scalar(user->input(2));
            if (alpha && *alpha == 1.0) {
                spec = "badd", other = user->input(1);
                chain.insert(chain.end(), tail.begin(), tail.end());
                chain.push_back(user);
                std::vector<Node*> tail2;
                Value* fed2 = nullptr;
                Node* r = sole_user(user->output(), fed2, tail2);
                if (r != nullptr && r->owningBlock() == block &&
                    (r->kind() == relu || r->kind() == relu_) && r->input(0) == fed2) {
                    spec = "badd+relu";
                    chain.insert(chain.end(), tail2.begin(), tail2.end());
                    chain.push_back(r);
                }
            }
        }
        Node* last = chain.back();
        torch::jit::WithInsertPoint guard(last);
        Value* ctx_v = graph.insertConstant(*ctx);
        Value* spec_v = graph.insertConstant(spec);
        Value* args_v = graph.insertConstant(args);
        Value* other_v = other ? other : graph.insertConstant(c10::IValue());
        std::vector<Value*> inputs{n->input(0), ctx_v, spec_v, args_v, other_v};
        if (!is_conv) inputs.push_back(graph.insertConstant(c10::IValue()));  // out_dtype
        Node* fused = graph.create(
            Symbol::fromQualString(is_conv ? "ipex::conv_run" : "ipex::linear_run"), inputs);
        fused->insertAfter(last);  // `other` fed `last` or an earlier node, so it is defined here
        fused->output()->setType(c10::TensorType::get());
        last->output()->replaceAllUsesWith(fused->output());
        dead.push_back(std::move(chain));
        ++replaced;
    }
    for (auto& chain : dead)
        for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            bool used = false;
            for (Value* o : (*it)->outputs()) used = used || o->hasUses();
            if (!used) (*it)->destroy();
        }
    return replaced;
}

}  // namespace

int fuse_frozen_graph(const std::shared_ptr<Graph>& graph) {
    const int replaced = fuse_block(graph->block(), *graph);
    if (replaced > 0) {
        detail::restore_stock_layouts(graph->block(), *graph);
        torch::jit::EliminateDeadCode(graph);
    }
    return replaced;
}

void set_jit_fusion_enabled(bool enabled) {
    g_enabled.store(enabled);
}
bool jit_fusion_enabled() {
    return g_enabled.load();
}

namespace {
// Registered once; a no-op unless enabled, and then only for graphs holding frozen
// conv/linear weights (so unrelated TorchScript models are never rewritten).
const auto g_pass = torch::jit::registerPrePass([](std::shared_ptr<Graph>& g) {
    if (!jit_fusion_enabled()) return;
    const int n = fuse_frozen_graph(g);
    if (std::getenv("IPEX_JIT_VERBOSE") != nullptr)
        std::fprintf(stderr, "ipex fusion pass: %d nodes fused\n", n);
});
}  // namespace

}  // namespace ipex::kernels
