"""Pass: `layer(x) + other` (also `out += other`, torch.add with alpha 1), where nothing else
uses the layer's output, runs as one oneDNN call with a binary-add post-op ("badd"), and an
activation that alone uses the sum joins it ("badd+relu"): a residual block's last
convolution, whoever wrote the block. The enclosing module's code is rewritten by the
rewrite_code pass (the layer is then called as layer(x, other))."""
from ..dataflow import patterns
from .fusion import record_fusions


def applies(ctx):
    return ctx.opts.weights_prepack


def run(model, ctx):
    return record_fusions(model, ctx, "residual", patterns.residual_chain)
