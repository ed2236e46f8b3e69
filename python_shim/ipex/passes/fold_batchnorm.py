"""Pass: a Conv/ConvTranspose/Linear whose output only a batch norm uses takes that batch norm
in; the batch norm becomes a FoldedBatchNorm stand-in (identity, same state-dict keys).

Pairs come from the traced data flow only (dataflow.DataFlow): the layer's output has exactly
one user, an eval batch norm with running statistics and matching channels; both are called
exactly once in all traced code and reached from nowhere else. The layer itself is rewritten
by the prepack pass (or by fold_weights when weights are not prepacked)."""
import torch
from torch import nn

from ..dataflow import patterns
from ..dataflow.flow import only_user, plain_call
from ..dataflow.tracing import has_hooks, stock_type
from ..nn.folding import FoldedBatchNorm
from .context import replace_everywhere
from .options import folding_wanted

# layer type -> (kind, batch norm type its output feeds)
_PAIRS = {
    nn.Conv1d: ("conv", nn.BatchNorm1d), nn.Conv2d: ("conv", nn.BatchNorm2d), nn.Conv3d: ("conv", nn.BatchNorm3d),
    nn.ConvTranspose1d: ("conv", nn.BatchNorm1d), nn.ConvTranspose2d: ("conv", nn.BatchNorm2d),
    nn.ConvTranspose3d: ("conv", nn.BatchNorm3d), nn.Linear: ("linear", nn.BatchNorm1d),
}


def applies(ctx):
    return folding_wanted(ctx.opts)


def run(model, ctx):
    flow = ctx.flow(model)
    order = {id(m): i for i, m in enumerate(model.modules())}  # load_state_dict's visiting order
    for region in flow.regions:
        for node in list(region.graph.nodes):
            pair = _foldable(node, region, flow, ctx.opts)
            if pair is None:
                continue
            layer, bn = pair
            stand_in = FoldedBatchNorm(bn)
            replace_everywhere(model, bn, stand_in)
            stand_in.attach(layer, order[id(bn)] > order[id(layer)])
            ctx.folded[id(layer)] = stand_in
    return model


def _foldable(node, region, flow, opts):
    if node.op != "call_module" or not plain_call(node):
        return None
    layer = region.root.get_submodule(node.target)
    kind, bn_type = _PAIRS.get(stock_type(layer), (None, None))
    if kind is None or not folding_wanted(opts, kind) or not flow.known(layer) or has_hooks(layer):
        return None
    if getattr(layer, "transposed", False) and layer.groups != 1:
        return None  # the folded scale would not line up with a grouped transposed weight
    last, _ = patterns.follow(node, region)
    user = only_user(last)
    if user is None or user.op != "call_module" or not plain_call(user) or user.args[0] is not last:
        return None
    bn = region.root.get_submodule(user.target)
    channels = layer.out_features if kind == "linear" else layer.out_channels
    if (stock_type(bn) is not bn_type or not usable_batch_norm(bn, channels) or not flow.known(bn)
            or has_hooks(bn)):
        return None
    if kind == "linear" and not _two_dimensional(node.args[0], region):
        return None  # BatchNorm1d on (N, C, L) normalises dim 1, not the linear's features
    return layer, bn


def usable_batch_norm(bn, channels):
    return (not bn.training and bn.track_running_stats and bn.running_mean is not None
            and bn.running_var is not None and bn.num_features == channels)


def _two_dimensional(node, region):
    """True when the value is provably a 2-D tensor (so a linear's features are dim 1)."""
    while isinstance(node, torch.fx.Node):
        if node.op == "call_function" and node.target is torch.flatten or (
                node.op == "call_method" and node.target == "flatten"):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            return start == 1 and end == -1
        if node.op == "call_method" and node.target in ("view", "reshape"):
            shape = node.args[1:]
            if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
                shape = shape[0]
            return len(shape) == 2
        if node.op == "call_module":
            m = region.root.get_submodule(node.target)
            if isinstance(m, nn.Flatten):
                return m.start_dim == 1 and m.end_dim == -1 and plain_call(node)
            if not (stock_type(m) in (nn.Linear, nn.BatchNorm1d) or patterns.is_pass_through(node, region)
                    or patterns.activation_of(node, region) is not None):
                return False
        elif patterns.activation_of(node, region) is None:
            return False
        node = node.args[0] if node.args else None
    return False


def fold_into_stock_layers(model, folded):
    """Without prepacking: each folded layer becomes a stock layer of the same type whose
    weight and bias include its batch norm (the batch norm's stand-in stays identity)."""
    from ..nn import folding
    done = set()
    for path, layer in list(model.named_modules(remove_duplicate=False)):
        bn = folded.get(id(layer))
        if bn is None or not path or id(layer) in done or stock_type(layer) is None:
            continue
        done.add(id(layer))
        out_dim = 1 if getattr(layer, "transposed", False) else 0
        w, b = folding.fold(layer.weight.detach(), None if layer.bias is None else layer.bias.detach(), bn, out_dim)
        new = type(layer).__new__(type(layer))
        new.__dict__ = dict(layer.__dict__)
        new._parameters = dict(layer._parameters)
        new.weight = nn.Parameter(w.to(layer.weight.dtype), requires_grad=False)
        new.bias = nn.Parameter(b.to(layer.weight.dtype), requires_grad=False)
        replace_everywhere(model, layer, new)
        folded[id(new)] = bn
    return model
