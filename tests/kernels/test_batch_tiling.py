"""Batch tiling in ipex.optimize: only for models that provably treat samples independently,
with results equal to the whole-batch run (slices of every size, remainders included)."""
import pytest
import torch
from torch import nn

import ipex
from ipex.nn import BatchTiled
from ipex.nn import batch_tiling


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.Hardswish(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 5), nn.Softmax(dim=1)).eval()


class MixesSamples(nn.Module):
    """Subtracts the batch mean: slicing the batch would change every result."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        return y - y.mean(0)


class BatchSizedConstant(nn.Module):
    """Adds a constant with one row per sample of the traced batch."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.register_buffer("rows", torch.randn(4, 4, 6, 6))

    def forward(self, x):
        return self.conv(x) + self.rows


class WeightFromTheBatch(nn.Module):
    """Convolves every sample with filters cut from the first samples."""

    def forward(self, x):
        return nn.functional.conv2d(x, x[:2, :, :3, :3])


class ConstantThroughAnOp(nn.Module):
    """A batch-sized buffer reaches the add through an op, not as a bare constant."""

    def __init__(self):
        super().__init__()
        self.register_buffer("rows", torch.randn(4, 3, 8, 8))

    def forward(self, x):
        return x + torch.relu(self.rows * x.size(1))


def test_per_sample_models_are_recognised_and_others_are_not():
    x = torch.randn(4, 3, 8, 8)
    assert batch_tiling.is_batch_independent(small_cnn(), x[:1])
    assert not batch_tiling.is_batch_independent(MixesSamples().eval(), x)
    assert not batch_tiling.is_batch_independent(BatchSizedConstant().eval(), x)
    assert not batch_tiling.is_batch_independent(nn.Flatten(0).eval(), x)  # flattens dim 0 away
    assert not batch_tiling.is_batch_independent(WeightFromTheBatch().eval(), x)
    assert not batch_tiling.is_batch_independent(ConstantThroughAnOp().eval(), x)
    assert not batch_tiling.is_batch_independent(small_cnn(), (x, x))  # not one tensor


@pytest.mark.parametrize("graph_mode", [False, True])
def test_fixed_slices_give_the_whole_batch_result(graph_mode):
    model = small_cnn()
    with torch.no_grad():
        opt = ipex.optimize(model, sample_input=torch.randn(1, 3, 8, 8), graph_mode=graph_mode, batch_tiling=2)
        if graph_mode:
            assert isinstance(opt, BatchTiled)
        for batch in (1, 2, 5, 8):
            x = torch.randn(batch, 3, 8, 8)
            assert torch.allclose(opt(x), model(x), atol=1e-5, rtol=1e-4), batch


def test_measured_slices_give_the_whole_batch_result():
    model = small_cnn()
    with torch.no_grad():
        opt = ipex.optimize(model, sample_input=torch.randn(1, 3, 8, 8), graph_mode=True)
        x = torch.randn(8, 3, 8, 8)
        assert torch.allclose(opt(x), model(x), atol=1e-5, rtol=1e-4)
    assert isinstance(opt, BatchTiled)
    chosen = opt.chosen
    assert set(chosen) == {8}
    assert chosen[8] in (None, 4, 2, 1)  # whichever was fastest; never a guess outside the halving


def test_models_that_mix_samples_are_never_tiled():
    for model in (MixesSamples().eval(), BatchSizedConstant().eval()):
        x = torch.randn(4, 3, 8, 8)
        with torch.no_grad():
            opt = ipex.optimize(model, sample_input=x, graph_mode=True)
            assert not isinstance(opt, BatchTiled)
            assert torch.allclose(opt(x), model(x), atol=1e-5, rtol=1e-4)
        with pytest.raises(ValueError, match="treats samples independently"):
            ipex.optimize(model, sample_input=x, batch_tiling=2)


def test_bad_settings_are_clear_errors():
    with pytest.raises(ValueError, match="slice size >= 1"):
        ipex.optimize(small_cnn(), sample_input=torch.randn(1, 3, 8, 8), batch_tiling=0)
    with pytest.raises(ValueError, match="sample_input"):
        ipex.optimize(small_cnn(), batch_tiling=4)
    assert not isinstance(ipex.optimize(small_cnn(), sample_input=torch.randn(1, 3, 8, 8), graph_mode=True,
                                        batch_tiling=False), BatchTiled)
    eager = ipex.optimize(small_cnn(), sample_input=torch.randn(1, 3, 8, 8))  # eager: tiled only on request
    assert not isinstance(eager, BatchTiled) and "forward" not in eager.__dict__


def test_tiled_models_keep_state_dict_and_refuse_a_second_optimize():
    model = small_cnn()
    sample = torch.randn(1, 3, 8, 8)
    eager = ipex.optimize(model, sample_input=sample, batch_tiling=2)
    small_cnn().load_state_dict(eager.state_dict())
    with pytest.raises(RuntimeError, match="already applied"):
        ipex.optimize(eager)
    with torch.no_grad():
        graph = ipex.optimize(model, sample_input=sample, graph_mode=True, batch_tiling=2)
    with pytest.raises(RuntimeError, match="already applied"):
        ipex.optimize(graph)
