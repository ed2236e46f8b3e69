"""Pass: packed convolutions whose output provably never reaches layout-sensitive code may
answer in the kernels' own memory layout (channels-last); the others answer contiguous.

Stock's convolution of a contiguous input is contiguous, and user code relies on it
(`x.view(x.size(0), -1)` after a pooling, a returned output): a packed convolution converts
its result back unless this pass proves from the traced data flow that every use of the
output, followed through layout-neutral ops (activations, batch norms, pooling, arithmetic),
ends in an op whose result does not depend on the layout (another packed convolution,
flatten, reshape, a reduction, a size). A value returned from traced code, or used by anything else,
keeps stock's layout. So models keep the fast layout between their layers and hand stock's
layout to everything the rewrite cannot see."""
import operator

import torch
from torch import nn
import torch.nn.functional as F

from ..nn.folding import FoldedBatchNorm
from ..nn.packed import PackedConv

# Modules whose output has the input's layout and whose values do not depend on it.
_NEUTRAL_MODULES = (
    FoldedBatchNorm, nn.Identity, nn.modules.dropout._DropoutNd, nn.modules.batchnorm._BatchNorm,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
    nn.Hardswish, nn.Hardsigmoid, nn.Hardtanh, nn.Mish, nn.Softplus,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
)
_NEUTRAL_FUNCTIONS = {
    operator.add, operator.iadd, operator.mul, operator.imul, operator.sub, operator.isub, operator.truediv,
    operator.itruediv, operator.getitem, torch.add, torch.mul, torch.sub, torch.cat, torch.relu, torch.relu_,
    torch.sigmoid, torch.tanh, F.relu, F.relu_, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.leaky_relu,
    F.elu, F.hardtanh, F.mish, F.sigmoid, F.tanh, F.max_pool1d, F.max_pool2d, F.max_pool3d,
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
}
_NEUTRAL_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "add", "add_", "mul", "mul_", "sub",
                    "sub_", "div", "div_", "clamp", "clamp_", "__getitem__"}
# Ops whose result is the same whatever the input's layout (copies or numbers).
_SAFE_FUNCTIONS = {torch.flatten, torch.mean, torch.sum, torch.amax, torch.reshape}
_SAFE_METHODS = {"flatten", "reshape", "contiguous", "size", "dim", "numel", "mean", "sum", "amax"}


def applies(ctx):
    return ctx.opts.weights_prepack and ctx.has_flow()


def run(model, ctx):
    flow = ctx.flow(model)
    for region in flow.regions:
        for node in region.graph.nodes:
            if node.op != "call_module":
                continue
            layer = region.root.get_submodule(node.target)
            if isinstance(layer, PackedConv) and flow.known(layer) and _layout_never_seen(node, region):
                layer.free_layout = True
    return model


def _layout_never_seen(start, region):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for user in node.users:
            if user in seen:
                continue
            seen.add(user)
            verdict = _use(user, region)
            if verdict is None:
                return False
            if verdict == "follow":
                todo.append(user)
    return True


def _use(node, region):
    """"safe" (the result no longer shows the layout), "follow" (the result has it: check its
    uses) or None (layout-sensitive or unknown)."""
    if node.op == "call_module":
        m = region.root.get_submodule(node.target)
        if isinstance(m, (nn.Flatten, PackedConv)):
            return "safe"  # a packed convolution's own output is decided by its own flag
        return "follow" if isinstance(m, _NEUTRAL_MODULES) else None
    if node.op == "call_function":
        if node.target in _SAFE_FUNCTIONS or node.target is getattr:
            return "safe"
        return "follow" if node.target in _NEUTRAL_FUNCTIONS else None
    if node.op == "call_method":
        if node.target in _SAFE_METHODS:
            return "safe"
        return "follow" if node.target in _NEUTRAL_METHODS else None
    return None  # output (returned), placeholders, anything else
