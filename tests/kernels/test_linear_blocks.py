"""Linear layers run as column blocks on a team of threads (kernels/src/linear_context.cpp):
every post-op, operand and layout gives the results of stock PyTorch and of the single
statically split primitive (IPEX_LINEAR_BLOCKS=0)."""
import pytest
import torch
import torch.nn.functional as F

from kernels_testutil import BF16_TOL, FP32_TOL, rel_err

# 200 outputs on 2 threads: blocks of 64, 64, 64 and a narrower last one of 8.
IN, OUT = 37, 200


@pytest.fixture
def two_threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    assert torch.get_num_threads() == 2
    yield
    torch.set_num_threads(old)


def _layer(bias=True):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(OUT, IN, generator=g) * 0.2
    b = torch.randn(OUT, generator=g) if bias else None
    x = torch.randn(5, 3, IN, generator=g)
    return x, w, b


def _both(kops, monkeypatch, w, b, dtype=torch.float32):
    blocked = kops.linear_prepack(w, b, dtype)
    monkeypatch.setenv("IPEX_LINEAR_BLOCKS", "0")
    whole = kops.linear_prepack(w, b, dtype)
    monkeypatch.delenv("IPEX_LINEAR_BLOCKS")
    return blocked, whole


@pytest.mark.parametrize("spec,fn", [("", lambda y: y), ("gelu_erf", F.gelu), ("relu", F.relu),
                                     ("sigmoid", torch.sigmoid)])
@pytest.mark.parametrize("bias", [True, False])
def test_blocks_match_stock(kops, monkeypatch, two_threads, spec, fn, bias):
    x, w, b = _layer(bias)
    blocked, whole = _both(kops, monkeypatch, w, b)
    ref = fn(F.linear(x, w, b))
    out = kops.linear_run(x, blocked, spec, [])
    assert out.shape == ref.shape
    assert rel_err(out, ref) <= FP32_TOL
    assert rel_err(out, kops.linear_run(x, whole, spec, [])) <= FP32_TOL


@pytest.mark.parametrize("shape", [(OUT,), (5, 3, OUT), (1,), (5, 3, 1), (3, OUT)])
@pytest.mark.parametrize("op", ["badd", "bmul"])
def test_blocks_with_broadcast_operand(kops, monkeypatch, two_threads, shape, op):
    x, w, b = _layer()
    other = torch.randn(*shape)
    blocked, _ = _both(kops, monkeypatch, w, b)
    pre = F.linear(x, w, b)
    ref = pre + other if op == "badd" else pre * other
    assert rel_err(kops.linear_run(x, blocked, op, [], other), ref) <= FP32_TOL
    assert rel_err(kops.linear_run(x, blocked, op + "+relu", [], other), F.relu(ref)) <= FP32_TOL


def test_blocks_add_in_place(kops, monkeypatch, two_threads):
    x, w, b = _layer()
    blocked, _ = _both(kops, monkeypatch, w, b)
    acc = torch.randn(5, 3, OUT)
    ref = F.relu(F.linear(x, w, b) + 0.5 * acc)
    out = kops.linear_run_(x, blocked, "add+relu", [0.5], acc)
    assert out.data_ptr() == acc.data_ptr()
    assert rel_err(acc, ref) <= FP32_TOL


def test_blocks_strided_input_and_many_rows(kops, monkeypatch, two_threads):
    _, w, b = _layer()
    x = torch.randn(IN, 300).t()  # not contiguous
    blocked, whole = _both(kops, monkeypatch, w, b)
    out = kops.linear_run(x, blocked, "", [])
    assert rel_err(out, F.linear(x, w, b)) <= FP32_TOL
    # the same blocks run again from the cache, and give the same numbers
    assert torch.equal(out, kops.linear_run(x, blocked, "", []))


def test_blocks_bf16_layer(kops, monkeypatch, two_threads):
    x, w, b = _layer()
    blocked, _ = _both(kops, monkeypatch, w, b, torch.bfloat16)
    out = kops.linear_run(x.bfloat16(), blocked, "gelu_erf", [])
    assert out.dtype == torch.bfloat16
    ref = F.gelu(F.linear(x.bfloat16().float(), w.bfloat16().float(), b))
    assert rel_err(out, ref) <= BF16_TOL


def test_blocks_follow_thread_count(kops, monkeypatch, two_threads):
    x, w, b = _layer()
    blocked, _ = _both(kops, monkeypatch, w, b)
    at_two = kops.linear_run(x, blocked, "", [])
    torch.set_num_threads(1)  # one primitive for the whole output
    at_one = kops.linear_run(x, blocked, "", [])
    assert rel_err(at_two, at_one) <= FP32_TOL
    assert blocked.cached_primitives() == 2
