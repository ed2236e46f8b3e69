"""oneDNN batch_matmul (strided operands, strided out), in-place softmax and layer norm."""
import pytest
import torch

from kernels_testutil import BF16_TOL, FP32_TOL, rel_err

# bfloat16 activations run on oneDNN where the CPU has native bf16, on ATen elsewhere (and
# with native bf16 disabled).
BF16_WAYS = [torch.float32, pytest.param(torch.bfloat16, id="bf16-native"),
             pytest.param("bf16-disabled", id="bf16-disabled")]


@pytest.fixture
def dtype(kops, request):
    if request.param == torch.bfloat16 and not kops.bf16_supported():
        pytest.skip("no native bf16 here")
    if request.param != "bf16-disabled":
        yield request.param
        return
    from ipex._kernels import set_bf16_disabled
    set_bf16_disabled(True)
    try:
        yield torch.bfloat16
    finally:
        set_bf16_disabled(False)


@pytest.mark.parametrize("dtype", BF16_WAYS, indirect=True)
def test_batch_matmul_strided_views(kops, dtype):
    tol = FP32_TOL if dtype == torch.float32 else BF16_TOL
    qkv = torch.randn(3, 9, 3, 2, 5).to(dtype)  # (batch, seq, qkv, heads, head_dim)
    q, k, v = qkv.permute(2, 0, 3, 1, 4)
    ref = torch.matmul(q.float(), k.float().transpose(-1, -2))
    scores = kops.batch_matmul(q, k.transpose(-1, -2))
    assert scores.is_contiguous() and rel_err(scores, ref) <= tol
    assert rel_err(kops.batch_matmul(q, k.transpose(-1, -2), 0.25), ref * 0.25) <= tol
    out = torch.empty(3, 9, 2, 5, dtype=dtype)
    kops.batch_matmul(scores, v, 1.0, out.permute(0, 2, 1, 3))
    assert rel_err(out, torch.matmul(scores.float(), v.float()).permute(0, 2, 1, 3)) <= tol


def test_batch_matmul_errors(kops):
    with pytest.raises(RuntimeError, match=r"cannot multiply \[2, 3, 4\] by \[2, 5, 6\]"):
        kops.batch_matmul(torch.randn(2, 3, 4), torch.randn(2, 5, 6))
    with pytest.raises(RuntimeError, match="batch dimensions differ"):
        kops.batch_matmul(torch.randn(2, 3, 4), torch.randn(3, 4, 6))


@pytest.mark.parametrize("dtype", BF16_WAYS, indirect=True)
def test_softmax_in_place(kops, dtype):
    x = (torch.randn(2, 3, 7, 13) * 4).to(dtype)
    x[0, 0, 0, :5] = float("-inf")  # masked keys
    ref = torch.softmax(x.float(), -1)
    y = kops.softmax_(x)
    assert y.data_ptr() == x.data_ptr()
    assert rel_err(x, ref) <= (1e-6 if dtype == torch.float32 else BF16_TOL)
    with pytest.raises(RuntimeError, match="contiguous"):
        kops.softmax_(torch.randn(4, 5).t())


@pytest.mark.parametrize("dtype", BF16_WAYS, indirect=True)
@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_matches_pytorch(kops, dtype, affine):
    x = (torch.randn(3, 7, 45) * 3 + 2).to(dtype)
    w, b = (torch.randn(45), torch.randn(45)) if affine else (None, None)
    ref = torch.nn.functional.layer_norm(x.float(), (45,), w, b, 1e-6)
    y = kops.layer_norm(x, w, b, 1e-6)
    assert y.dtype == dtype and y.shape == x.shape
    assert rel_err(y, ref) <= (FP32_TOL if dtype == torch.float32 else BF16_TOL)
    # A transposed (non-contiguous) input is normalised along its own last dimension.
    xt = torch.randn(45, 6).t()
    ref_t = torch.nn.functional.layer_norm(xt, (45,), w, b, 1e-6)
    assert rel_err(kops.layer_norm(xt, w, b, 1e-6), ref_t) <= FP32_TOL


def test_layer_norm_errors(kops):
    with pytest.raises(RuntimeError, match=r"input of size \[2, 5\] needs weight and bias of 5"):
        kops.layer_norm(torch.randn(2, 5), torch.randn(4), torch.randn(4))
    with pytest.raises(RuntimeError, match="weight and bias must be given together"):
        kops.layer_norm(torch.randn(2, 5), torch.randn(5), None)
    with pytest.raises(RuntimeError, match="float32 or bfloat16"):
        kops.layer_norm(torch.randn(2, 5).double(), None, None)
    assert kops.layer_norm(torch.empty(0, 5), None, None).shape == (0, 5)
