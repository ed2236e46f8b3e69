"""The layer configurations PyTorch's own module tests use (padding modes, 'same'/'valid',
groups, dilation, stride, transposed with output_padding, bias=False, 1-D/3-D, unbatched),
through ipex.optimize() bare, followed by a batch norm and an in-place ReLU, and as the two
branches of a residual add: float32 within 1e-4 of eager."""
import pytest
import torch
from torch import nn

from optimize_testutil import FP32_TOL, optimize, randomize_batch_norms, rel_err, run

CONFIGS = {
    "conv1d": (lambda: nn.Conv1d(4, 5, 3), (2, 4, 10)),
    "conv1d_stride_pad": (lambda: nn.Conv1d(4, 5, 3, stride=2, padding=1), (2, 4, 9)),
    "conv1d_dilated": (lambda: nn.Conv1d(4, 4, 3, dilation=2), (2, 4, 12)),
    "conv1d_groups": (lambda: nn.Conv1d(4, 6, 3, groups=2), (2, 4, 8)),
    "conv1d_same_even": (lambda: nn.Conv1d(4, 5, 4, padding="same", dilation=3), (2, 4, 11)),
    "conv1d_circular": (lambda: nn.Conv1d(4, 5, 3, padding=2, padding_mode="circular"), (2, 4, 7)),
    "conv2d_rect": (lambda: nn.Conv2d(3, 4, (3, 2)), (2, 3, 7, 5)),
    "conv2d_no_bias": (lambda: nn.Conv2d(3, 4, 3, padding=1, bias=False), (2, 3, 6, 6)),
    "conv2d_valid": (lambda: nn.Conv2d(3, 4, 3, padding="valid"), (2, 3, 6, 7)),
    "conv2d_same_dilated": (lambda: nn.Conv2d(3, 4, 3, padding="same", dilation=2), (2, 3, 8, 7)),
    "conv2d_depthwise": (lambda: nn.Conv2d(4, 8, 3, padding=1, groups=4), (2, 4, 6, 6)),
    "conv2d_reflect": (lambda: nn.Conv2d(3, 4, 3, padding=(1, 2), padding_mode="reflect"), (2, 3, 6, 7)),
    "conv2d_replicate": (lambda: nn.Conv2d(3, 4, 3, stride=2, padding=1, padding_mode="replicate"), (2, 3, 7, 7)),
    "conv2d_pad_beyond_kernel": (lambda: nn.Conv2d(2, 3, 3, padding=3), (1, 2, 4, 4)),
    "conv2d_unbatched": (lambda: nn.Conv2d(3, 4, 3, padding=1), (3, 6, 6)),
    "conv3d": (lambda: nn.Conv3d(2, 3, (2, 3, 2)), (2, 2, 4, 5, 4)),
    "conv3d_stride2_pad123": (lambda: nn.Conv3d(2, 3, 3, 2, (1, 2, 3)), (2, 2, 4, 4, 4)),
    "conv3d_groups_dilated": (lambda: nn.Conv3d(4, 4, 3, padding=2, dilation=2, groups=2), (1, 4, 5, 5, 5)),
    "conv3d_circular": (lambda: nn.Conv3d(2, 3, 3, padding=1, padding_mode="circular"), (1, 2, 4, 4, 4)),
    "convT1d_output_padding": (lambda: nn.ConvTranspose1d(3, 4, 3, stride=3, padding=1, output_padding=1),
                               (2, 3, 5)),
    "convT2d": (lambda: nn.ConvTranspose2d(3, 4, 3, stride=(3, 2), padding=1, output_padding=(2, 1), dilation=1),
                (2, 3, 4, 5)),
    "convT2d_groups_no_bias": (lambda: nn.ConvTranspose2d(4, 4, 3, stride=2, groups=2, bias=False), (2, 4, 3, 3)),
    "convT3d_dilated": (lambda: nn.ConvTranspose3d(2, 3, 2, stride=2, dilation=2, output_padding=1), (1, 2, 3, 3, 3)),
    "linear": (lambda: nn.Linear(10, 8), (4, 10)),
    "linear_no_bias": (lambda: nn.Linear(10, 8, bias=False), (4, 10)),
}
NORMS = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _dims(layer):
    return 1 if isinstance(layer, nn.Linear) else len(layer.kernel_size)


def _channels(layer):
    return layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels


class TwoBranches(nn.Module):
    """relu(bn1(a(x)) + bn2(b(x))): folding into both, a residual add into one of them."""

    def __init__(self, make):
        super().__init__()
        self.a, self.b = make(), make()
        norm = NORMS[_dims(self.a)]
        self.bn1, self.bn2 = norm(_channels(self.a)), norm(_channels(self.a))

    def forward(self, x):
        y = self.bn1(self.a(x))
        return torch.relu(y + self.bn2(self.b(x)))


def _check(model, x):
    model = randomize_batch_norms(model).eval()
    ref = run(model, x)
    opt = optimize(model)
    assert rel_err(run(opt, x), ref) <= FP32_TOL
    assert rel_err(run(opt, x), ref) <= FP32_TOL  # again, with the primitives cached
    assert list(opt.state_dict()) == list(model.state_dict())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_layer_configurations(name):
    make, shape = CONFIGS[name]
    torch.manual_seed(0)
    x = torch.randn(*shape)
    _check(make(), x)
    _check(nn.Sequential(make()), x)
    layer = make()
    if x.dim() == _dims(layer) + 1 and not isinstance(layer, nn.Linear):
        return  # unbatched: batch norms need a batch
    _check(nn.Sequential(layer, NORMS[_dims(layer)](_channels(layer)), nn.ReLU(inplace=True)), x)
    _check(TwoBranches(make), x)
