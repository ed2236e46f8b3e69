"""Pass: dropout modules become nn.Identity (in eval mode they already are)."""
from torch import nn

from ..dataflow.tracing import editable_modules, has_hooks

_DROPOUTS = tuple(getattr(nn, n) for n in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout",
                                           "FeatureAlphaDropout") if hasattr(nn, n))


def applies(ctx):
    return ctx.opts.replace_dropout_with_identity


def run(model, ctx):
    for parent in list(editable_modules(model)):
        for name, child in list(parent._modules.items()):
            if type(child) in _DROPOUTS and not child.training and not has_hooks(child):
                parent._modules[name] = nn.Identity()
    return model
