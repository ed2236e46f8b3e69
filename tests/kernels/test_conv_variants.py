"""Prepacked convolutions (1d/2d/3d, transposed) over the geometry PyTorch allows."""
import subprocess
import sys

import pytest
import torch
from torch import nn

from kernels_testutil import BF16_TOL, FP32_TOL, rel_err

CASES = [
    # (module factory, input shape)
    (lambda: nn.Conv1d(4, 6, 3), (1, 4, 11)),
    (lambda: nn.Conv1d(6, 9, 5, stride=2, padding=3, dilation=2, groups=3), (3, 6, 17)),
    (lambda: nn.Conv1d(4, 4, 3, padding="same", padding_mode="reflect"), (2, 4, 9)),
    (lambda: nn.Conv2d(3, 8, 3), (1, 3, 10, 9)),
    (lambda: nn.Conv2d(6, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2), (3, 6, 13, 11)),
    (lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), (5, 8, 7, 7)),
    (lambda: nn.Conv2d(4, 5, 4, padding="same", dilation=2), (1, 4, 9, 8)),
    (lambda: nn.Conv2d(4, 5, 3, padding="valid"), (2, 4, 6, 6)),
    (lambda: nn.Conv2d(4, 5, 3, padding=2, padding_mode="reflect"), (1, 4, 7, 9)),
    (lambda: nn.Conv2d(4, 5, 3, padding=1, padding_mode="replicate"), (3, 4, 7, 5)),
    (lambda: nn.Conv2d(4, 5, 3, padding=1, padding_mode="circular"), (1, 4, 6, 6)),
    (lambda: nn.Conv3d(3, 4, 3, padding=1), (1, 3, 5, 6, 7)),
    (lambda: nn.Conv3d(4, 6, (1, 3, 3), stride=(1, 2, 2), groups=2, dilation=(1, 2, 1)), (3, 4, 3, 9, 8)),
    (lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1), (3, 4, 7)),
    (lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2), (1, 4, 5, 6)),
    (lambda: nn.ConvTranspose2d(3, 5, (4, 3), stride=(2, 3), dilation=(1, 2)), (3, 3, 4, 5)),
    (lambda: nn.ConvTranspose3d(4, 4, 3, stride=2, padding=1), (1, 4, 3, 4, 5)),
]


def _packed(kops, conv, dtype=torch.float32):
    from ipex.nn import PackedConv
    return PackedConv(conv, dtype)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv_matches_eager(kops, case):
    factory, shape = CASES[case]
    torch.manual_seed(case)
    conv = factory().eval()
    x = torch.randn(*shape)
    ref = conv(x).detach()
    packed = _packed(kops, conv)
    assert tuple(packed.weight.shape) == tuple(conv.weight.shape)
    assert rel_err(packed(x), ref) <= FP32_TOL
    if x.dim() in (4, 5):
        fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
        assert rel_err(packed(x.contiguous(memory_format=fmt)), ref) <= FP32_TOL
    if x.dim() == 3:  # a channels-last 1-D input (stride 1 over channels)
        xt = x.transpose(1, 2).contiguous().transpose(1, 2)
        assert rel_err(packed(xt), ref) <= FP32_TOL


@pytest.mark.parametrize("case", [1, 4, 11, 14])
def test_conv_bf16(kops, case):
    if not kops.bf16_supported():
        pytest.skip("no native bf16 here")
    factory, shape = CASES[case]
    torch.manual_seed(case)
    conv = factory().eval()
    x = torch.randn(*shape)
    conv16 = factory().eval()
    conv16.load_state_dict({k: v.bfloat16().float() for k, v in conv.state_dict().items()})
    out = _packed(kops, conv, torch.bfloat16)(x.bfloat16())
    assert out.dtype == torch.bfloat16
    assert rel_err(out, conv16(x.bfloat16().float()).detach()) <= BF16_TOL


def test_thread_count_change_gives_same_results(kops):
    conv = nn.Conv2d(16, 32, 3, padding=1).eval()
    lin = nn.Linear(64, 48).eval()
    from ipex.nn import PackedConv, PackedLinear
    pc, pl = PackedConv(conv), PackedLinear(lin)
    x, y = torch.randn(2, 16, 12, 12), torch.randn(9, 64)
    from ipex import _C
    old = torch.get_num_threads()
    results = []
    try:
        torch.set_num_threads(2)
        results.append((pc(x).clone(), pl(y).clone()))
        before = _C.cache_invalidations()
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append((pc(x).clone(), pl(y).clone()))
        # one new entry per context at 1 thread, reported to the runtime's watch; 2 is reused
        assert _C.cache_invalidations() - before == 2
    finally:
        torch.set_num_threads(old)
    with torch.no_grad():
        rc, rl = conv(x), lin(y)
    for c, l in results:
        assert rel_err(c, rc) <= FP32_TOL and rel_err(l, rl) <= FP32_TOL
    # one primitive per thread count (2 and 1), reused when 2 comes back
    assert pc._ctx.cached_primitives() == 2 and pl._ctx.cached_primitives() == 2


FALLBACK = r"""
import warnings, torch
from ipex._kernels import ops, bf16_supported
assert not bf16_supported()
lin = torch.nn.Linear(16, 8)
x = torch.randn(4, 16)
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    c1 = ops().linear_prepack(lin.weight, lin.bias, torch.bfloat16)
    c2 = ops().linear_prepack(lin.weight, lin.bias, torch.bfloat16)
# The warning reaches Python or, for custom ops, the C++ log on stderr (checked by the caller).
msgs = [str(m.message) for m in w if "no native bfloat16" in str(m.message)]
assert len(msgs) <= 1, msgs
print("py-warnings", len(msgs))
assert c1.compute_dtype() == 6  # float32
out = ops().linear_run(x, c1)
assert out.dtype == torch.float32
assert (out - lin(x)).abs().max().item() < 1e-5
assert ops().linear_run(x.bfloat16(), c1).dtype == torch.bfloat16
print("ok")
"""


def test_bf16_fallback_when_isa_check_forced_off(kops):
    import os
    env = dict(os.environ, IPEX_DISABLE_BF16="1", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    p = subprocess.run([sys.executable, "-c", FALLBACK], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stdout.strip().endswith("ok"), p.stderr[-2000:]
    py_warnings = int(p.stdout.split()[1])
    assert py_warnings + p.stderr.count("no native bfloat16") == 1, (p.stdout, p.stderr)


def test_bf16_disabled_in_process(kops):
    lin = nn.Linear(16, 8).eval()
    x = torch.randn(4, 16)
    kops.set_bf16_disabled(True)
    try:
        ctx = kops.linear_prepack(lin.weight, lin.bias, torch.bfloat16)
        assert ctx.compute_dtype() == 6
        assert rel_err(kops.linear_run(x, ctx), lin(x).detach()) <= FP32_TOL
    finally:
        kops.set_bf16_disabled(False)


WINOGRAD = r"""
import sys, torch
from torch import nn
import ipex
from ipex.nn import PackedConv
from kernels_testutil import FP32_TOL, rel_err
torch.manual_seed(0)
worst = 0.0
for cin, cout, shape in ((64, 64, (1, 64, 14, 14)), (32, 48, (3, 32, 9, 11))):
    conv = nn.Conv2d(cin, cout, 3, padding=1).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        ref = conv(x)
        packed = PackedConv(conv, torch.float32)
        for inp in (x, x.contiguous(memory_format=torch.channels_last)):
            worst = max(worst, rel_err(packed(inp), ref))
        packed.fuse_activation("relu", [])
        worst = max(worst, rel_err(packed(x), torch.relu(ref)))
        # an in-place accumulator keeps direct convolution: the output must land in it
        acc = torch.randn_like(ref)
        worst = max(worst, rel_err(packed.run_fused(x, "add", acc.clone()), ref + acc))
        worst = max(worst, rel_err(packed(x[:1]), torch.relu(ref[:1])))
        assert torch.equal(packed.state_dict()["weight"], conv.weight)
print("worst", worst, "ok" if worst <= FP32_TOL else "too far")
"""


@pytest.mark.parametrize("winograd", ["1", "0", None])
def test_winograd_3x3_matches_eager(kops, winograd):
    """With IPEX_CONV_WINOGRAD=1, float32 3x3 stride-1 convolutions take oneDNN's Winograd
    kernels (reordering the activations to the blocked layout they need), other calls of the
    same layer still work from the weight kept beside the Winograd copy, and state_dict
    still reads the weight; all match eager. oneDNN's verbose log shows what ran."""
    import os
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, DNNL_VERBOSE="1",
               PYTHONPATH=os.pathsep.join([tests_dir] + [p for p in sys.path if p]))
    env.pop("IPEX_CONV_WINOGRAD", None)
    if winograd is not None:
        env["IPEX_CONV_WINOGRAD"] = winograd
    p = subprocess.run([sys.executable, "-c", WINOGRAD], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().endswith("ok"), p.stdout[-2000:]
    used = "alg:convolution_winograd" in p.stdout
    # oneDNN's Winograd kernels need AVX-512; elsewhere the switch changes nothing
    with open("/proc/cpuinfo") as f:
        avx512 = " avx512f" in f.read()
    assert used == (winograd == "1" and avx512), p.stdout[-3000:]
    assert "alg:convolution_direct" in p.stdout  # the accumulating call stayed direct
