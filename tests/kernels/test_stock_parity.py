"""Packed layers accept what stock PyTorch accepts and give its results: PyTorch's own module
configurations (module_db) and ours, float64 layers, inputs that want gradients, and fused
residual post-ops against `layer(x) + other` for any `other`."""
import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kernels_testutil import rel_err
from stock_modules import all_cases

TOL = 1e-4  # the bound for float32 against eager
BF16_TOL = 5e-2
CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
CASES = all_cases()


def pack(module, dtype=torch.float32):
    """The module with every conv, linear and encoder layer replaced by its packed form."""
    from ipex.nn import PackedConv, PackedLinear, PackedTransformerEncoderLayer
    from ipex.nn.transformer import can_pack

    def convert(m):
        if type(m) in CONVS:
            return PackedConv(m, dtype)
        if type(m) is nn.Linear:
            return PackedLinear(m, dtype)
        if type(m) is nn.TransformerEncoderLayer and can_pack(m):
            return PackedTransformerEncoderLayer(m, dtype)
        for name, child in list(m._modules.items()):
            if child is not None:
                m._modules[name] = convert(child)
        return m

    return convert(copy.deepcopy(module))


def _same(out, ref, tol=TOL):
    if isinstance(ref, torch.Tensor):
        assert isinstance(out, torch.Tensor) and out.dtype == ref.dtype and out.shape == ref.shape
        assert rel_err(out.detach(), ref.detach()) <= tol
    else:
        assert len(out) == len(ref)
        for o, r in zip(out, ref):
            _same(o, r, tol)


def _seeded(case):
    torch.manual_seed(sum(map(ord, case.name)))
    return case.make().eval()


def test_module_db_is_used():
    names = {c.name.split(":")[1] for c in CASES if c.name.startswith("module_db:")}
    # expecttest stand-in or not, PyTorch's own table must be there on torch 1.13
    assert {"Conv2d", "ConvTranspose3d", "Linear", "TransformerEncoderLayer", "Transformer"} <= names, names


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float32_matches_stock(kops, case):
    m = _seeded(case)
    with torch.no_grad():
        ref = m(*case.args, **case.kwargs)
        out = pack(m)(*case.args, **case.kwargs)
    _same(out, ref)


def _map_inputs(case, fn):
    """The case's forward args and kwargs with fn applied to each floating-point tensor."""
    def one(a):
        return fn(a) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
    return [one(a) for a in case.args], {k: one(v) for k, v in case.kwargs.items()}


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_float64_runs_the_stock_computation(kops, case):
    m = _seeded(case).double()
    args, kwargs = _map_inputs(case, torch.Tensor.double)
    with torch.no_grad():
        ref = m(*args, **kwargs)
        out = pack(m)(*args, **kwargs)
    _same(out, ref, 1e-12)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_input_wanting_gradients_gets_them(kops, case):
    m = _seeded(case)
    for p in m.parameters():
        p.requires_grad_(False)
    args, kwargs = _map_inputs(case, lambda t: t.detach().clone().requires_grad_(True))
    leaves = [a for a in list(args) + list(kwargs.values()) if isinstance(a, torch.Tensor) and a.requires_grad]
    ref = m(*args, **kwargs)
    weights = torch.randn_like(ref)  # a plain sum has ~0 gradient through a layer norm
    (ref * weights).sum().backward()
    ref_grads = [t.grad.clone() for t in leaves]
    for t in leaves:
        t.grad = None
    out = pack(m)(*args, **kwargs)
    assert out.requires_grad
    (out * weights).sum().backward()
    _same(out, ref)
    for t, g in zip(leaves, ref_grads):
        assert rel_err(t.grad, g) <= TOL


@pytest.mark.parametrize("case", [c for c in CASES if "empty" not in c.name], ids=repr)
def test_bfloat16_close_to_float32(kops, case):
    m = _seeded(case)
    with torch.no_grad():
        ref = m(*case.args, **case.kwargs)
        out = pack(m, torch.bfloat16)(*case.args, **case.kwargs)
    assert out.shape == ref.shape
    assert rel_err(out.float(), ref) <= BF16_TOL


@pytest.mark.parametrize("make, x", [
    (lambda: nn.Conv2d(4, 3, 3), torch.randn(2, 3, 8, 8)),
    (lambda: nn.Conv2d(4, 3, 3), torch.randn(8, 8)),
    (lambda: nn.Linear(4, 3), torch.randn(2, 5)),
    (lambda: nn.ConvTranspose2d(4, 3, 3), torch.randn(2, 4, 5)),
], ids=["conv_channels", "conv_2d_input", "linear_features", "convT_3d_input"])
def test_what_stock_refuses_is_refused(kops, make, x):
    m = make().eval()
    with pytest.raises((RuntimeError, ValueError)) as stock_err:
        m(x)
    with pytest.raises(type(stock_err.value)):
        pack(m)(x)


def test_transposed_output_size_like_stock(kops):
    from ipex.nn import PackedConv
    torch.manual_seed(0)
    m = nn.ConvTranspose2d(4, 3, 3, stride=3, padding=1).eval()
    p = PackedConv(m)
    x = torch.randn(2, 4, 5, 6)
    with torch.no_grad():
        for size in ([13, 16], [15, 17], [2, 3, 14, 18], [14, 16]):
            _same(p(x, output_size=size), m(x, output_size=size))
        _same(p(x[0], output_size=[15, 16]), m(x[0], output_size=[15, 16]))  # unbatched
        _same(p(x, [14, 17]), m(x, [14, 17]))  # stock's second positional argument
        with pytest.raises(ValueError, match="valid sizes range from"):
            p(x, output_size=[20, 16])
        with pytest.raises(ValueError, match="valid sizes range from"):
            m(x, output_size=[20, 16])


def _residual_others(y):
    """Second operands for `y + other`, each as PyTorch would take it."""
    shape = y.shape
    return {
        "same": torch.randn(shape),
        "channels_last": torch.randn(shape).contiguous(memory_format=torch.channels_last) if y.dim() == 4 else None,
        "per_channel": torch.randn(shape[1], *([1] * (y.dim() - 2))),
        "scalar_tensor": torch.tensor(0.5),
        "row": torch.randn(shape[-1]),
        "partial": torch.randn(1, *shape[1:-1], 1),
        "enlarging": torch.randn(3, *shape),
        "float64": torch.randn(shape, dtype=torch.float64),
        "float64_scalar": torch.tensor(2.0, dtype=torch.float64),
        "bfloat16": torch.randn(shape).bfloat16(),
        "int": torch.randint(-3, 3, shape),
        "transposed": torch.randn(tuple(reversed(shape))).permute(*reversed(range(y.dim()))),
        "wants_grad": torch.randn(shape, requires_grad=True),
        "python_float": 1.5,
        "python_int": 3,
    }


@pytest.mark.parametrize("layer", ["conv", "linear", "conv_unbatched"])
@pytest.mark.parametrize("chain", ["badd", "badd+relu", "bmul", "bmul+sigmoid", "relu+badd"])
def test_residual_post_ops_equal_stock_for_any_other(kops, layer, chain):
    from ipex.nn import PackedConv, PackedLinear
    torch.manual_seed(1)
    if layer == "linear":
        m, x = nn.Linear(6, 5).eval(), torch.randn(4, 3, 6)
        p = PackedLinear(m)
    else:
        m, x = nn.Conv2d(3, 4, 3, padding=1).eval(), torch.randn(2, 3, 5, 6)
        if layer == "conv_unbatched":
            x = x[0]
        p = PackedConv(m)
    p.post_op = (chain, [])
    steps = chain.split("+")
    acts = {"relu": torch.relu, "sigmoid": torch.sigmoid}
    y = m(x).detach()
    for name, other in _residual_others(y).items():
        if other is None:
            continue
        ref = y
        for step in steps:
            ref = ref + other if step == "badd" else ref * other if step == "bmul" else acts[step](ref)
        with torch.set_grad_enabled(getattr(other, "requires_grad", False)):
            out = p(x, other)
        assert out.dtype == ref.dtype and out.shape == ref.shape, name
        assert out.requires_grad == getattr(ref, "requires_grad", False), name
        assert rel_err(out.detach(), ref.detach()) <= 1e-5, name


def test_residual_operand_aliasing_the_input(kops):
    from ipex.nn import PackedConv, PackedLinear
    torch.manual_seed(2)
    conv, lin = nn.Conv2d(4, 4, 3, padding=1).eval(), nn.Linear(5, 5).eval()
    pc, pl = PackedConv(conv), PackedLinear(lin)
    x, v = torch.randn(2, 4, 6, 6), torch.randn(3, 5)
    with torch.no_grad():
        for chain in ("badd+relu", "bmul"):
            pc.post_op = pl.post_op = (chain, [])
            op = torch.add if chain.startswith("badd") else torch.mul
            fin = torch.relu if chain.endswith("relu") else (lambda t: t)
            xc, vc = x.clone(), v.clone()
            assert rel_err(pc(x, x), fin(op(conv(xc), xc))) <= 1e-5
            assert rel_err(pl(v, v), fin(op(lin(vc), vc))) <= 1e-5
            assert torch.equal(x, xc) and torch.equal(v, vc)  # the operand is read, never written
        # the in-place accumulation into the very tensor the layer reads
        out = kops.conv_run_(x, pc._ctx, "add", [1.0], x)
        assert out.data_ptr() == x.data_ptr() and rel_err(x, conv(xc) + xc) <= 1e-5


def test_bfloat16_layer_keeps_pytorch_type_promotion(kops):
    from ipex.nn import PackedLinear
    lin = nn.Linear(8, 8).eval()
    p = PackedLinear(lin, torch.bfloat16)
    p.post_op = ("badd", [])
    x = torch.randn(3, 8).bfloat16()
    with torch.no_grad():
        y16 = p(x, torch.randn(3, 8).bfloat16())
        y32 = p(x, torch.randn(3, 8))
    assert y16.dtype == torch.bfloat16
    assert y32.dtype == torch.float32  # bf16 + float32 is float32 in PyTorch


def test_shape_errors_are_pytorch_errors(kops):
    """Inputs stock refuses are refused with stock's own message."""
    from ipex.nn import PackedConv, PackedLinear
    conv, lin = nn.Conv2d(4, 8, 3, dilation=4).eval(), nn.Linear(8, 3).eval()
    for stock, packed, x in ((conv, PackedConv(conv), torch.randn(1, 5, 9, 9)),
                             (conv, PackedConv(conv), torch.randn(1, 4, 6, 6)),
                             (lin, PackedLinear(lin), torch.randn(2, 7))):
        with pytest.raises(RuntimeError) as stock_err:
            stock(x)
        with pytest.raises(RuntimeError) as our_err:
            packed(x)
        assert str(stock_err.value).splitlines()[0] == str(our_err.value).splitlines()[0]


def test_relu_after_residual_keeps_autograd(kops):
    from ipex.nn import PackedConv
    conv = nn.Conv2d(3, 3, 1).eval()
    p = PackedConv(conv)
    p.post_op = ("badd+relu", [])
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    F.relu(conv(x) + x).sum().backward()
    ref, x.grad = x.grad.clone(), None
    p(x, x).sum().backward()
    assert rel_err(x.grad, ref) <= 1e-5
