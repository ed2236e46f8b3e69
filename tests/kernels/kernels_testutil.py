"""Comparison helpers shared by the kernel tests."""
import torch


def rel_err(out, ref):
    """Max abs difference relative to the output scale (NaN/inf positions must agree)."""
    out, ref = out.float(), ref.float()
    assert out.shape == ref.shape, (out.shape, ref.shape)
    finite = torch.isfinite(ref)
    assert torch.equal(finite, torch.isfinite(out)), "non-finite values differ"
    if not finite.any():
        return 0.0
    scale = max(ref[finite].abs().max().item(), 1e-6)
    return (out[finite] - ref[finite]).abs().max().item() / scale


FP32_TOL = 1e-5
BF16_TOL = 2e-2
