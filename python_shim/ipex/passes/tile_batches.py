"""Pass: batch tiling (ipex.nn.BatchTiled) where the traced sample_input shows that every
operation treats samples independently. Graph mode: measured per batch size unless a slice
size is given. Eager models are wrapped only when a slice size is given explicitly."""
from ..nn import batch_tiling as tiling


def applies(ctx):
    return ctx.opts.batch_tiling is not False and (ctx.finished is not None or ctx.opts.batch_tiling is not None)


def check(original, ctx):
    """Before any pass (the traced graph of the stock model is what is checked): whether
    tiling is possible; a clear error when a slice size was asked for but is not."""
    fixed = ctx.opts.batch_tiling
    if fixed is False or (fixed is None and not ctx.opts.graph_mode):
        return
    sample = ctx.opts.sample_input
    if isinstance(sample, (tuple, list)) and len(sample) == 1:
        sample = sample[0]
    ctx.batch_independent = sample is not None and tiling.is_batch_independent(original, sample)
    if fixed is not None and not ctx.batch_independent:
        raise ValueError("ipex.optimize: batch_tiling needs a single-tensor sample_input through which every "
                         "operation of the model treats samples independently; "
                         "this model or sample_input does not show that")


def run(model, ctx):
    """Wraps ctx.finished (graph mode) or the eager model."""
    fixed = ctx.opts.batch_tiling
    if not ctx.batch_independent:
        return model
    if ctx.finished is not None:
        ctx.finished = tiling.BatchTiled(ctx.finished, fixed)
        return model
    return tiling.BatchTiled(model, fixed)
