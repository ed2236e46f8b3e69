"""Convolutions on oneDNN's blocked activation layouts (chosen below AVX-512 for spatial
kernels, forced with IPEX_CONV_LAYOUT) answer as the channels-last ones and as stock do, and
the layout asked for is the one oneDNN runs."""
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from kernels_testutil import FP32_TOL, rel_err
from test_conv_variants import CASES


POINTWISE = [
    (lambda: nn.Conv1d(6, 10, 1), (3, 6, 11)),
    (lambda: nn.Conv2d(16, 40, 1), (2, 16, 7, 9)),
    (lambda: nn.Conv2d(40, 8, 1, bias=False), (1, 40, 5, 5)),
    (lambda: nn.Conv3d(8, 12, 1), (2, 8, 3, 4, 5)),
    (lambda: nn.Conv2d(16, 24, 1, stride=2), (2, 16, 9, 9)),
    (lambda: nn.Conv2d(16, 24, 1, groups=4), (2, 16, 6, 6)),
]


@pytest.fixture(params=["plain", "blocked"])
def layout(request, monkeypatch):
    # Read when a layer makes its primitive: fresh layers below see it.
    monkeypatch.setenv("IPEX_CONV_LAYOUT", request.param)
    return request.param


@pytest.mark.parametrize("case", range(len(CASES) + len(POINTWISE)))
@pytest.mark.parametrize("channels_last", [False, True])
def test_every_layout_matches_eager(kops, layout, case, channels_last):
    from ipex.nn import PackedConv
    factory, shape = (CASES + POINTWISE)[case]
    torch.manual_seed(case)
    conv = factory().eval()
    x = torch.randn(shape)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert rel_err(PackedConv(conv, torch.float32)(x), conv(x)) <= FP32_TOL


def test_layers_in_a_model_with_activations_and_residuals(kops, layout):
    import ipex

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(16, 16, 3, padding=1)
            self.b = nn.Conv2d(16, 16, 3, padding=1)
            self.c = nn.Conv2d(16, 32, 1)
            self.d = nn.Conv2d(32, 16, 1)

        def forward(self, x):
            y = torch.relu(self.a(x))
            z = self.c(torch.relu(self.b(y) + x))
            return torch.relu(self.d(torch.sigmoid(z)) + x)  # a pointwise layer with a residual

    torch.manual_seed(1)
    model = Block().eval()
    x = torch.randn(3, 16, 12, 10)
    with torch.no_grad():
        ref = model(x)
        assert rel_err(ipex.optimize(model)(x), ref) <= FP32_TOL
        assert rel_err(ipex.optimize(model, sample_input=x, graph_mode=True)(x), ref) <= FP32_TOL


with open("/proc/cpuinfo") as f:
    AVX512 = " avx512f " in f.read().replace("\n", " ")

PROBE = r"""
import sys, torch
sys.path.insert(0, sys.argv[1])
from ipex.nn import PackedConv
conv = torch.nn.Conv2d(16, 16, 3, padding=1).eval()
with torch.no_grad():
    PackedConv(conv, torch.float32)(torch.randn(2, 16, 9, 9).contiguous(memory_format=torch.channels_last))
"""


@pytest.mark.parametrize("layout, expect_reorders", [("plain", False), ("blocked", True)])
def test_the_layout_asked_for_is_the_one_onednn_runs(build_dir, layout, expect_reorders):
    env = dict(os.environ, IPEX_CONV_LAYOUT=layout, ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", PROBE, str(build_dir / "python")], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    execs = [line.split(",") for line in out.stdout.splitlines() if line.startswith("onednn_verbose,exec")]
    convs = [e for e in execs if e[3] == "convolution"]
    assert len(convs) == 1, out.stdout
    src_format = next(f for f in convs[0] if f.startswith("src_f32")).split(":")[3]
    # Reorders of activations (not of the weight, which is packed once, at 16x16x3x3).
    activation_reorders = [e for e in execs if e[3] == "reorder" and "16x16x3x3" not in ",".join(e)]
    if expect_reorders:
        # Where oneDNN's own pick is channels-last (possible with AVX-512) nothing is reordered.
        assert (src_format != "acdb") == (len(activation_reorders) == 2), out.stdout
        if not AVX512:
            assert src_format != "acdb", out.stdout
    else:
        assert src_format == "acdb" and not activation_reorders, out.stdout
