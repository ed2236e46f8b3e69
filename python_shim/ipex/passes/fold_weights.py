"""Pass: folded layers that were not prepacked (weights_prepack off, or a layer prepack
leaves alone) become stock layers of the same type whose weight and bias include their
batch norm."""
from .fold_batchnorm import fold_into_stock_layers


def applies(ctx):
    return bool(ctx.folded)


def run(model, ctx):
    return fold_into_stock_layers(model, ctx.folded)
