"""torch.ops.ipex conv/linear kernels with every fused post-op, against eager PyTorch."""
import pytest
import torch
import torch.nn.functional as F

from kernels_testutil import BF16_TOL, FP32_TOL, rel_err

# name -> (args, eager reference, needs positive pre-activation)
POST_OPS = {
    "relu": ([], F.relu, False),
    "leaky_relu": ([0.1], lambda y: F.leaky_relu(y, 0.1), False),
    "gelu_erf": ([], F.gelu, False),
    "gelu_tanh": ([], lambda y: F.gelu(y, approximate="tanh"), False),
    "silu": ([], F.silu, False),
    "sigmoid": ([], torch.sigmoid, False),
    "tanh": ([], torch.tanh, False),
    "mish": ([], F.mish, False),
    "abs": ([], torch.abs, False),
    "exp": ([], torch.exp, False),
    "square": ([], torch.square, False),
    "hardswish": ([], F.hardswish, False),
    "hardsigmoid": ([], F.hardsigmoid, False),
    "hardtanh": ([-0.5, 0.75], lambda y: F.hardtanh(y, -0.5, 0.75), False),
    "clamp": ([-1.0, 0.5], lambda y: y.clamp(-1.0, 0.5), False),
    "elu": ([0.7], lambda y: F.elu(y, 0.7), False),
    "sqrt": ([], torch.sqrt, True),
    "log": ([], torch.log, True),
    "pow": ([2.5], lambda y: y.pow(2.5), True),
    "round": ([], torch.round, False),
}


def _conv_inputs(positive, dtype=torch.float32):
    g = torch.Generator().manual_seed(1)
    if positive:
        w = torch.rand(12, 6, 3, 3, generator=g) * 0.2
        b = torch.rand(12, generator=g) + 0.1
        x = torch.rand(3, 6, 9, 7, generator=g)
    else:
        w = torch.randn(12, 6, 3, 3, generator=g) * 0.3
        b = torch.randn(12, generator=g)
        x = torch.randn(3, 6, 9, 7, generator=g)
    return x, w, b


def _check_round(out, ref):
    # Ties may round differently after a last-bit difference in the convolution.
    bad = (out - ref).abs() > 0
    frac = (ref - ref.floor() - 0.5).abs()
    assert bool((frac[bad] > 0.49).all() | ~bad.any())


@pytest.mark.parametrize("name", sorted(POST_OPS))
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_conv2d_post_op_fp32(kops, name, layout):
    args, ref_fn, positive = POST_OPS[name]
    x, w, b = _conv_inputs(positive)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = kops.conv_prepack(w, b, [1, 1], [1, 1], [1, 1], [1, 1], 1, False, [0, 0], torch.float32)
    out = kops.conv_run(x, ctx, name, args)
    pre = F.conv2d(x, w, b, padding=1)
    ref = ref_fn(pre)
    if name == "round":
        scaled = kops.conv_run(x * 4, ctx, "round", [])  # coarser grid: exercise real rounding
        _check_round(scaled, torch.round(F.conv2d(x * 4, w, b, padding=1)))
        _check_round(out, ref)
    else:
        assert rel_err(out, ref) <= FP32_TOL, name


@pytest.mark.parametrize("name", sorted(set(POST_OPS) - {"round", "exp"}))
def test_conv2d_post_op_bf16(kops, name):
    if not kops.bf16_supported():
        pytest.skip("no native bf16 here")
    args, ref_fn, positive = POST_OPS[name]
    x, w, b = _conv_inputs(positive)
    x = x[:1]  # batch 1
    ctx = kops.conv_prepack(w, b, [1, 1], [1, 1], [1, 1], [1, 1], 1, False, [0, 0], torch.bfloat16)
    out = kops.conv_run(x.bfloat16(), ctx, name, args)
    assert out.dtype == torch.bfloat16
    # reference from the same bf16-rounded operands, in float32
    ref = ref_fn(F.conv2d(x.bfloat16().float(), w.bfloat16().float(), b, padding=1))
    assert rel_err(out, ref) <= BF16_TOL, name


@pytest.mark.parametrize("name", sorted(POST_OPS))
def test_linear_post_op_fp32_and_bf16(kops, name):
    args, ref_fn, positive = POST_OPS[name]
    g = torch.Generator().manual_seed(2)
    gen = torch.rand if positive else torch.randn
    x = gen(5, 3, 37, generator=g)
    w = gen(29, 37, generator=g) * 0.2
    b = gen(29, generator=g) * (1.0 if not positive else 0.1) + (0.1 if positive else 0)
    ref = ref_fn(F.linear(x, w, b))
    out = kops.linear_run(x, kops.linear_prepack(w, b, torch.float32), name, args)
    if name == "round":
        _check_round(out, ref)
        return
    assert rel_err(out, ref) <= FP32_TOL
    if kops.bf16_supported() and name not in ("exp",):
        # Reference from the same bf16-rounded operands, computed in float32.
        ctx = kops.linear_prepack(w, b, torch.bfloat16)
        out16 = kops.linear_run(x.bfloat16(), ctx, name, args)
        assert out16.dtype == torch.bfloat16
        ref16 = ref_fn(F.linear(x.bfloat16().float(), w.bfloat16().float(), b))
        assert rel_err(out16, ref16) <= BF16_TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_conv_add_in_place_and_relu(kops, dtype):
    if dtype == torch.bfloat16 and not kops.bf16_supported():
        pytest.skip("no native bf16 here")
    tol = FP32_TOL if dtype == torch.float32 else BF16_TOL
    x, w, b = _conv_inputs(False)
    ctx = kops.conv_prepack(w, b, [1, 1], [1, 1], [1, 1], [1, 1], 1, False, [0, 0], dtype)
    acc = torch.randn(3, 12, 9, 7).contiguous(memory_format=torch.channels_last).to(dtype)
    acc_before = acc.float().clone()
    ref = F.conv2d(x.to(dtype).float(), w.to(dtype).float(), b, padding=1)
    out = kops.conv_run_(x, ctx, "add+relu", [1.0], acc)
    assert out.data_ptr() == acc.data_ptr(), "the accumulator is written in place"
    assert rel_err(out, F.relu(ref + acc_before)) <= tol
    # alpha scales the accumulator, no relu; not in place leaves the accumulator alone
    acc2 = torch.randn(3, 12, 9, 7).to(dtype)
    out2 = kops.conv_run(x, ctx, "add", [0.5], acc2)
    assert rel_err(out2, ref + 0.5 * acc2.float()) <= tol
    assert out2.data_ptr() != acc2.data_ptr()


def test_linear_add_in_place(kops):
    x, w, b = torch.randn(7, 20), torch.randn(11, 20), torch.randn(11)
    ctx = kops.linear_prepack(w, b, torch.float32)
    acc = torch.randn(7, 11)
    ref = F.relu(F.linear(x, w, b) + acc)
    out = kops.linear_run_(x, ctx, "add+relu", [1.0], acc)
    assert out.data_ptr() == acc.data_ptr()
    assert rel_err(acc, ref) <= FP32_TOL


@pytest.mark.parametrize("shape", [(12, 1, 1), (1, 9, 1), (3, 12, 9, 7), (1,)])
@pytest.mark.parametrize("op", ["badd", "bmul"])
def test_conv_broadcast_binary(kops, shape, op):
    x, w, b = _conv_inputs(False)
    other = torch.randn(*shape)
    ctx = kops.conv_prepack(w, b, [1, 1], [1, 1], [1, 1], [1, 1], 1, False, [0, 0], torch.float32)
    pre = F.conv2d(x, w, b, padding=1)
    ref = pre + other if op == "badd" else pre * other
    assert rel_err(kops.conv_run(x, ctx, op, [], other), ref) <= FP32_TOL
    assert rel_err(kops.conv_run(x, ctx, op + "+relu", [], other), F.relu(ref)) <= FP32_TOL


@pytest.mark.parametrize("shape", [(11,), (7, 11), (7, 1)])
def test_linear_broadcast_binary(kops, shape):
    x, w, b = torch.randn(7, 20), torch.randn(11, 20), torch.randn(11)
    other = torch.randn(*shape)
    ctx = kops.linear_prepack(w, b, torch.float32)
    assert rel_err(kops.linear_run(x, ctx, "bmul", [], other), F.linear(x, w, b) * other) <= FP32_TOL


def test_post_op_errors(kops):
    ctx = kops.linear_prepack(torch.randn(4, 3), None, torch.float32)
    with pytest.raises(RuntimeError, match="unknown fused post-op 'bogus'"):
        kops.linear_run(torch.randn(2, 3), ctx, "bogus", [])
    with pytest.raises(RuntimeError, match="scalar arguments"):
        kops.linear_run(torch.randn(2, 3), ctx, "relu", [1.0])
    with pytest.raises(RuntimeError, match="needs a second tensor"):
        kops.linear_run(torch.randn(2, 3), ctx, "badd", [])
