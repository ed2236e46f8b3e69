#include "graph_layouts.h"

#include <torch/csrc/jit/ir/constants.h>

#include <string>
#include <unordered_set>
#include <vector>

namespace ipex::kernels::detail {
namespace {

namespace jit = torch::jit;

// Ops whose tensor result has their first input's layout, with values independent of it.
const std::unordered_set<std::string>& neutral_ops() {
    static const std::unordered_set<std::string> ops{
        "prim::profile",
        "aten::relu",
        "aten::relu_",
        "aten::add",
        "aten::add_",
        "aten::mul",
        "aten::mul_",
        "aten::sub",
        "aten::sub_",
        "aten::div",
        "aten::div_",
        "aten::sigmoid",
        "aten::sigmoid_",
        "aten::tanh",
        "aten::tanh_",
        "aten::hardtanh",
        "aten::hardtanh_",
        "aten::clamp",
        "aten::clamp_",
        "aten::silu",
        "aten::silu_",
        "aten::hardswish",
        "aten::hardswish_",
        "aten::hardsigmoid",
        "aten::gelu",
        "aten::leaky_relu",
        "aten::leaky_relu_",
        "aten::elu",
        "aten::max_pool1d",
        "aten::max_pool2d",
        "aten::max_pool3d",
        "aten::avg_pool1d",
        "aten::avg_pool2d",
        "aten::avg_pool3d",
        "aten::adaptive_avg_pool1d",
        "aten::adaptive_avg_pool2d",
        "aten::adaptive_avg_pool3d",
        "aten::dropout",
        "aten::batch_norm",
        "aten::detach",
    };
    return ops;
}

// Ops whose result does not show their inputs' layout (copies, numbers, ipex's own convs).
const std::unordered_set<std::string>& blind_ops() {
    static const std::unordered_set<std::string> ops{
        "ipex::conv_run", "aten::flatten", "aten::reshape", "aten::contiguous", "aten::size",
        "aten::dim",      "aten::numel",   "aten::mean",    "aten::sum",        "aten::amax",
    };
    return ops;
}

bool layout_seen(jit::Value* start) {
    std::vector<jit::Value*> todo{start};
    std::unordered_set<jit::Value*> seen{start};
    while (!todo.empty()) {
        jit::Value* v = todo.back();
        todo.pop_back();
        for (const auto& use : v->uses()) {
            jit::Node* user = use.user;
            const std::string kind = user->kind().toQualString();
            if (blind_ops().count(kind)) continue;
            // Only the tensor operands of a neutral op in the same block; its result is followed.
            if (!neutral_ops().count(kind) || user->owningBlock() != start->node()->owningBlock() ||
                user->outputs().size() != 1)
                return true;
            if (seen.insert(user->output()).second) todo.push_back(user->output());
        }
    }
    return false;
}

}  // namespace

int restore_stock_layouts(jit::Block* block, jit::Graph& graph) {
    int inserted = 0;
    std::vector<jit::Node*> convs;
    for (jit::Node* n : block->nodes()) {
        for (jit::Block* sub : n->blocks()) inserted += restore_stock_layouts(sub, graph);
        if (n->kind() == c10::Symbol::fromQualString("ipex::conv_run")) convs.push_back(n);
    }
    for (jit::Node* conv : convs) {
        if (!layout_seen(conv->output())) continue;
        jit::WithInsertPoint guard(conv->next());
        jit::Value* format =
            graph.insertConstant(static_cast<int64_t>(c10::MemoryFormat::Contiguous));
        jit::Node* copy =
            graph.create(c10::Symbol::fromQualString("aten::contiguous"), {conv->output(), format});
        copy->insertAfter(format->node());
        copy->output()->setType(conv->output()->type());
        conv->output()->replaceAllUsesWith(copy->output());
        copy->replaceInput(0, conv->output());
        ++inserted;
    }
    return inserted;
}

}  // namespace ipex::kernels::detail
