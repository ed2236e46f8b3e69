"""Helpers of the ipex.optimize() tests."""
import torch
from torch import nn

FP32_TOL = 1e-4  # relative to the output's scale: folding changes the rounding of weights
BF16_TOL = 5e-2  # bf16 against float32 eager


def optimize(*args, **kwargs):
    import ipex
    return ipex.optimize(*args, **kwargs)


def rewritten_code(module):
    from ipex.dataflow.rewrite import rewritten_code as code
    return code(module)


def randomize_batch_norms(model, seed=3):
    """Random running statistics and affine parameters, so that a wrong fold shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.running_mean is not None:
                n = m.num_features
                m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                    m.bias.copy_(torch.rand(n, generator=g) - 0.5)
    return model


def tensors(output):
    """The floating-point tensors of a (nested) output, in order."""
    if isinstance(output, torch.Tensor):
        return [output] if output.is_floating_point() else []
    if isinstance(output, dict):
        return [t for v in output.values() for t in tensors(v)]
    if isinstance(output, (list, tuple)):
        return [t for v in output for t in tensors(v)]
    return []


def rel_err(out, ref):
    """Largest |out - ref| relative to ref's largest magnitude, over all output tensors."""
    outs, refs = tensors(out), tensors(ref)
    assert len(outs) == len(refs) and refs, (len(outs), len(refs))
    worst = 0.0
    for o, r in zip(outs, refs):
        assert o.shape == r.shape, (o.shape, r.shape)
        o, r = o.float(), r.float()
        assert torch.isfinite(o).all() and torch.isfinite(r).all()
        worst = max(worst, ((o - r).abs().max() / r.abs().max().clamp_min(1e-6)).item())
    return worst


def run(model, x, bf16=False):
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=bf16):
        return model(*x) if isinstance(x, tuple) else model(x)
