"""Pass: graph mode. The model (batch norms folded into stock layers) is traced with
sample_input, frozen, and run twice so the kernels' TorchScript pre-pass swaps frozen
conv/linear nodes and their activation/add for fused ipex ops. Under bf16 autocast the weight
casts fold into bf16 constants during freezing.

A trace keeps one path through forward, so it is used only when it is provably faithful:
torch.fx traced the whole forward (no Python control flow on inputs) and torch.jit.trace
raised no TracerWarning (no tensor turned into a Python value). Otherwise one warning, and
the remaining eager passes run instead."""
import copy
import warnings

import torch
from torch import nn

from .. import _kernels
from ..nn.transformer import can_pack
from .fold_batchnorm import fold_into_stock_layers


def applies(ctx):
    return ctx.opts.graph_mode


def arguments(sample_input):
    return tuple(sample_input) if isinstance(sample_input, (tuple, list)) else (sample_input,)


def run(model, ctx):
    opts = ctx.opts
    if opts.weights_prepack and any(type(m) is nn.TransformerEncoderLayer and can_pack(m) for m in model.modules()):
        # A traced encoder layer is PyTorch's fused fast-path op, which the TorchScript pass
        # cannot improve and which fails under bf16 autocast in torch 1.13; the packed eager
        # layer is the fast path.
        warnings.warn("ipex.optimize: graph_mode is not applied to models with nn.TransformerEncoderLayer; "
                      "their layers run as packed oneDNN layers instead", stacklevel=3)
        return model
    flow = ctx.flow(model)
    if not flow.whole_model_traced:
        return _not_faithful(model, "torch.fx cannot trace its forward (Python control flow on inputs?)")
    source = _folded_copy(model, ctx.folded, opts.share_weights)
    args = arguments(opts.sample_input)
    _kernels.ops().set_jit_fusion(True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", torch.jit.TracerWarning)
        with torch.no_grad(), torch.cpu.amp.autocast(enabled=opts.dtype == torch.bfloat16):
            try:
                trace = torch.jit.trace(source, args, check_trace=False)
            except Exception as e:  # noqa: BLE001 - eager is always available
                return _not_faithful(model, f"torch.jit.trace failed ({type(e).__name__}: {e})")
    tracer_warnings = [w for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
    for w in caught:
        if w not in tracer_warnings:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if tracer_warnings:
        return _not_faithful(model, f"the trace depends on its input ({tracer_warnings[0].message})")
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=opts.dtype == torch.bfloat16):
        frozen = torch.jit.freeze(trace)
        for _ in range(2):  # profiling runs, after which the optimised graph is built
            frozen(*args)
    ctx.finished = frozen
    return model


def _not_faithful(model, why):
    warnings.warn(f"ipex.optimize: graph_mode not applied, {why}: the model stays eager (optimized)",
                  stacklevel=3)
    return model


def _folded_copy(model, folded, share_weights):
    """A copy of model whose folded layers carry their batch norm in their stock weights.
    Its tensors become the frozen graph's constants, which the fused kernels may read where
    they are: they are copies unless `share_weights` (then shared with model wherever
    unchanged; model shares the original's)."""
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())} if share_weights else {}
    source = copy.deepcopy(model, memo)
    translated = {id(memo[k]): memo[id(v)] for k, v in folded.items() if k in memo}
    return fold_into_stock_layers(source, translated)
