"""Pass (dtype bfloat16): LayerNorm and GroupNorm compute in float32 (ipex.nn.float32_norms),
so that bf16 activations reaching them under autocast work (stock torch 1.13 fails there:
BERT-style Linear/Embedding -> LayerNorm). Their parameters and state-dict keys stay."""
import torch

from ..dataflow.tracing import editable_modules, has_hooks
from ..nn.float32_norms import FLOAT32_NORMS


def applies(ctx):
    return ctx.opts.dtype == torch.bfloat16


def run(model, ctx):
    for m in editable_modules(model):
        cls = FLOAT32_NORMS.get(type(m))
        if cls is not None and not has_hooks(m):
            m.__class__ = cls
    return model
