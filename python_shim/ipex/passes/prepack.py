"""Pass: stock Conv*/ConvTranspose*/Linear layers (exact types) become PackedConv/PackedLinear
(weights prepacked for oneDNN, any folded batch norm taken in), nn.TransformerEncoderLayer a
PackedTransformerEncoderLayer, a whole nn.TransformerEncoder a PackedTransformerEncoder (which
keeps stock's nested-tensor results for padded batches). A bare layer passed to optimize() is
itself replaced.

The model being optimized shares the original's tensors, and a packed layer may read them
where they are: only when the options share weights (codeless mode); otherwise packed layers
get copies of their own, so that editing the original never changes the result."""
import contextlib

from torch import nn

from .._kernels import ops
from ..dataflow.tracing import editable_modules, has_hooks, stock_type
from ..nn.packed import PackedConv, PackedLinear, reading_weights_in_place
from ..nn.transformer import PackedTransformerEncoder, PackedTransformerEncoderLayer, can_pack, can_pack_encoder

CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def applies(ctx):
    return ctx.opts.weights_prepack


def run(model, ctx):
    ops()  # fails early and clearly if the kernels are not built
    with reading_weights_in_place() if ctx.opts.share_weights else contextlib.nullcontext():
        return _replace_layers(model, ctx)


def _replace_layers(model, ctx):
    packed = {}  # id(original) -> replacement: a shared layer stays one shared module

    def replacement(m):
        if id(m) not in packed:
            packed[id(m)] = new = _packed(m, ctx)
            if new is not None and ctx.has_flow():
                ctx.flow(model).adopt(m, new)
        return packed[id(m)]

    root = replacement(model)
    if root is not None:
        return root
    replaced = set()  # modules inside a replaced module (e.g. an encoder's layers) stay as they are
    for parent in list(editable_modules(model)):
        if id(parent) in replaced or isinstance(parent, nn.MultiheadAttention):
            continue  # MultiheadAttention reads out_proj's weight and bias itself, never calls it
        for name, child in list(parent._modules.items()):
            if child is not None and not (ctx.has_flow() and ctx.flow(model).read_directly(child)):
                new = replacement(child)
                if new is not None:
                    parent._modules[name] = new
                    replaced.update(id(m) for m in child.modules())
    return model


def _packed(m, ctx):
    if has_hooks(m):
        return None  # its hooks expect the stock module
    dtype = ctx.opts.dtype
    base = stock_type(m)
    if base in CONVS or base is nn.Linear:
        bn = ctx.folded.get(id(m))
        layer = (PackedLinear if base is nn.Linear else PackedConv)(m, dtype, bn=bn)
        if bn is not None:
            bn.retarget(layer)
            ctx.folded[id(layer)] = bn
        return layer
    if base is nn.TransformerEncoderLayer and can_pack(m):
        return PackedTransformerEncoderLayer(m, dtype)
    if base is nn.TransformerEncoder and can_pack_encoder(m) and not any(has_hooks(x) for x in m.modules()):
        return PackedTransformerEncoder(m, dtype)
    return None
