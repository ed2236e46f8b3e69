"""Answers of an optimized copy that autograd can differentiate.

A model in eval mode called with gradients enabled (no torch.no_grad) whose parameters require
gradients gives stock an answer with a grad_fn: the program may call backward() on it (a
frozen-batch-norm fine-tuning loop, saliency with respect to the weights). The copy runs
under no_grad, so its answer is handed out through an autograd Function whose backward runs
the original model again with gradients enabled (same inputs and random state, as
torch.utils.checkpoint does) and returns the original's gradients: the forward value is the
copy's, the gradients are exactly stock's.
"""
import torch
from torch.utils._pytree import tree_flatten, tree_unflatten


def wanted(module):
    """True when stock's answer would record gradients: grad mode on and a parameter that
    requires them (inputs that require them never reach the copy)."""
    return torch.is_grad_enabled() and any(p.requires_grad for p in module.parameters())


def differentiable(run_copy, run_original, module):
    """run_copy()'s answer whose tensors backpropagate through run_original() into module's
    parameters."""
    rng = torch.get_rng_state()
    out = run_copy()
    leaves, spec = tree_flatten(out)
    slots = [i for i, v in enumerate(leaves) if isinstance(v, torch.Tensor) and v.is_floating_point()]
    if not slots:
        return out
    params = [p for p in module.parameters() if p.requires_grad]

    def recompute():
        with torch.random.fork_rng(devices=[]):
            torch.set_rng_state(rng)
            with torch.enable_grad():
                again, _ = tree_flatten(run_original())
        return [again[i] for i in slots]

    results = _EagerBackward.apply(recompute, len(slots), *[leaves[i] for i in slots], *params)
    for i, t in zip(slots, results):
        leaves[i] = t
    return tree_unflatten(leaves, spec)


class _EagerBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, recompute, count, *tensors):
        ctx.recompute = recompute
        ctx.count = count
        # The parameters, saved so that one changed in place before backward raises as in stock.
        ctx.save_for_backward(*tensors[count:])
        # New tensor objects sharing the copy's results: autograd attaches its grad_fn to
        # these, never to a tensor the copy may also hold (a buffer, an input passed through).
        return tuple(t.detach() for t in tensors[:count])

    @staticmethod
    def backward(ctx, *grads):
        params = ctx.saved_tensors
        outs = ctx.recompute()
        pairs = [(o, g.to(o.dtype)) for o, g in zip(outs, grads) if g is not None and o.requires_grad]
        got = (None,) * len(params)
        if pairs:
            got = torch.autograd.grad([o for o, _ in pairs], params, [g for _, g in pairs], allow_unused=True)
        return (None, None) + (None,) * ctx.count + tuple(got)
