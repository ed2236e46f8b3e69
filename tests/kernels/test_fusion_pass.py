"""The TorchScript pre-pass on frozen graphs (ipex.optimize(graph_mode=True))."""
import pytest
import torch
from torch import nn
import torch.nn.functional as F

from kernels_testutil import BF16_TOL, rel_err

TOL = 1e-4


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.l1 = nn.Linear(8, 16)
        self.l2 = nn.Linear(16, 16)

    def forward(self, x):
        y = F.relu(self.c1(x))
        z = self.bn(self.c2(y))
        z += y
        z = F.relu(z)
        z = F.hardtanh(self.c3(z), -0.5, 0.5)
        v = F.gelu(self.l1(z.mean((2, 3))), approximate="tanh")
        return self.l2(v) + v


def _graph_text(model, x, autocast=False):
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=autocast):
        return str(model.graph_for(x))


def test_graph_mode_fuses_and_matches_eager():
    from ipex import optimize
    torch.manual_seed(0)
    model = Mixed().eval()
    x = torch.randn(2, 3, 10, 9)
    g = optimize(model, graph_mode=True, sample_input=x)
    text = _graph_text(g, x)
    assert text.count("ipex::conv_run") == 3 and text.count("ipex::linear_run") == 2
    for spec in ('"relu"', '"badd+relu"', '"clamp"', '"gelu_tanh"', '"badd"'):
        assert spec in text, spec
    assert "aten::_convolution" not in text and "aten::linear" not in text
    with torch.no_grad():
        ref = model(x)
        assert rel_err(g(x), ref) <= TOL
        x2 = torch.randn(3, 3, 7, 12)  # other shapes go through the same fused graph
        assert rel_err(g(x2), model(x2)) <= TOL


def test_graph_mode_bf16():
    from ipex import optimize
    from ipex._kernels import bf16_supported
    if not bf16_supported():
        pytest.skip("no native bf16 here")
    torch.manual_seed(0)
    model = Mixed().eval()
    x = torch.randn(2, 3, 10, 9)
    g = optimize(model, dtype=torch.bfloat16, graph_mode=True, sample_input=x)
    assert _graph_text(g, x, autocast=True).count("ipex::conv_run") == 3
    with torch.no_grad(), torch.cpu.amp.autocast():
        out = g(x)
    with torch.no_grad():
        assert rel_err(out, model(x)) <= 2 * BF16_TOL


def test_graph_without_pattern_is_untouched():
    from ipex._kernels import ops
    ops().set_jit_fusion(True)

    class NoConst(nn.Module):  # the linear weight is an input, not a frozen constant
        def forward(self, x, w):
            return torch.relu(F.linear(x, w)) * 2

    x, w = torch.randn(4, 5), torch.randn(3, 5)
    with torch.no_grad():
        t = torch.jit.freeze(torch.jit.script(NoConst().eval()))
        before = str(t.graph)
        for _ in range(3):
            out = t(x, w)
        text = str(t.graph_for(x, w))
    assert "ipex::" not in text and "aten::linear" in text
    assert str(t.graph) == before
    assert torch.equal(out, torch.relu(F.linear(x, w)) * 2)
