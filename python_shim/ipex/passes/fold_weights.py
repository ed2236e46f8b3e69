"""Pass (weights not prepacked): folded layers become stock layers of the same type whose
weight and bias include their batch norm."""
from .fold_batchnorm import fold_into_stock_layers


def applies(ctx):
    return not ctx.opts.weights_prepack and bool(ctx.folded)


def run(model, ctx):
    return fold_into_stock_layers(model, ctx.folded)
