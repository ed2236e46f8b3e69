"""Pass: `layer(x) + other` (also `out += other`, torch.add with alpha 1), where nothing else
uses the layer's output, runs as one oneDNN call with a binary-add post-op ("badd"), and an
activation that alone uses the sum joins it ("badd+relu"): a residual block's last
convolution, whoever wrote the block. The enclosing module's code is rewritten by the
rewrite_code pass (the layer is then called as layer(x, other))."""
from ..dataflow import patterns
from .context import CodeEdit
from .fuse_activation import fusable_layer
from .rewrite_code import owner_for, scopes


def applies(ctx):
    return ctx.opts.weights_prepack


def run(model, ctx):
    flow = ctx.flow(model)
    for region in flow.regions:
        for node in list(region.graph.nodes):
            layer = fusable_layer(node, region, flow, ctx)
            if layer is None:
                continue
            found = patterns.residual_chain(node, region)
            if found is None:
                continue
            nodes, post_op = found
            owner = owner_for(model, region, [node, *nodes])
            if owner is not None:
                ctx.edits.append(CodeEdit(owner, region.qualname(node.target), "residual", post_op,
                                          scopes(region, [node, *nodes])))
                ctx.claimed.add(id(layer))
    return model
