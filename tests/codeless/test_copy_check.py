"""The codeless copy answers only if its first answer matches eager's as a user means it:
within 1e-4 (float32) or 5e-2 (bfloat16) of the largest output magnitude, also for outputs
far smaller than 1. In process: the hook is installed around each test only."""
import pytest
import torch
from torch import nn

from ipex.cpu.codeless.hook import CodelessHook


class Scaled(nn.Module):
    """What a subtly wrong optimization would give: eager's answer times (1 + error)."""

    def __init__(self, model, error):
        super().__init__()
        self.model, self.error = model, error

    def forward(self, x):
        return self.model(x) * (1 + self.error)


def answers(error, scale, dtype=torch.float32):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Tanh()).eval()
    with torch.no_grad():
        model[0].weight.mul_(scale)  # outputs of magnitude ~scale
    x = torch.randn(4, 8)
    with torch.no_grad():
        want = model(x)
    hook = CodelessHook(dtype, graph_mode=False, optimize=lambda m, **kw: Scaled(m, error))
    hook.install()
    try:
        with torch.no_grad():
            got = [model(x) for _ in range(3)]
        used = hook.copy_of(model) is not None
    finally:
        hook.uninstall()
    return want, got, used


@pytest.mark.parametrize("scale", [1.0, 1e-3], ids=["unit", "small_outputs"])
def test_a_copy_off_by_more_than_the_tolerance_is_not_used(scale):
    want, got, used = answers(5e-4, scale)
    assert not used
    assert all(torch.equal(g, want) for g in got)


def test_a_copy_within_the_tolerance_answers():
    want, got, used = answers(2e-5, 1e-3)
    assert used
    assert all((g - want).abs().max() <= 1e-4 * want.abs().max() for g in got)


def test_bfloat16_copies_are_held_to_five_percent():
    assert not answers(8e-2, 1.0, torch.bfloat16)[2]
    assert answers(1e-2, 1.0, torch.bfloat16)[2]
