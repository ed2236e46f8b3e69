"""Pass: with sample_input, run the optimized model once (which also packs the weights for
these shapes) and, in float32, compare it with the original's output."""
import torch
from torch.utils._pytree import tree_flatten

TOLERANCE = 1e-4  # relative to the output's largest magnitude; rewrites change rounding only


def applies(ctx):
    return ctx.opts.sample_input is not None


def call(model, sample_input):
    if isinstance(sample_input, dict):
        return model(**sample_input)
    if isinstance(sample_input, (tuple, list)):
        return model(*sample_input)
    return model(sample_input)


def reference(original, ctx):
    """The original's float32 output on sample_input (even when called under autocast)."""
    if ctx.opts.sample_input is None or ctx.opts.dtype != torch.float32:
        return None
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=False):
        return call(original, ctx.opts.sample_input)


def largest_error(out, ref):
    """Largest relative difference over the tensors of two outputs, None if not comparable."""
    outs, out_spec = tree_flatten(out)
    refs, ref_spec = tree_flatten(ref)
    if out_spec != ref_spec:
        return None
    worst = 0.0
    for o, r in zip(outs, refs):
        if not isinstance(r, torch.Tensor) or not r.is_floating_point():
            continue
        if not isinstance(o, torch.Tensor) or o.shape != r.shape:
            return float("inf")
        finite = torch.isfinite(r)
        if not torch.equal(finite, torch.isfinite(o)):
            return float("inf")
        if finite.any():
            scale = max(r[finite].abs().max().item(), 1e-6)
            worst = max(worst, (o.float()[finite] - r.float()[finite]).abs().max().item() / scale)
    return worst


def run(model, ctx):
    target = ctx.finished if ctx.finished is not None else model
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=ctx.opts.dtype == torch.bfloat16):
        out = call(target, ctx.opts.sample_input)
    if ctx.reference is not None:
        err = largest_error(out, ctx.reference)
        if err is not None and err > TOLERANCE:
            ctx.mismatch = err  # optimize() then returns the original (or raises when inplace)
    return model
