"""ipex.optimize(): folding, prepacking, state dicts, memory and misuse."""
import copy
import gc
import weakref

import pytest
import torch
from torch import nn

from kernels_testutil import BF16_TOL, rel_err

OPT_TOL = 1e-4  # folding changes the rounding of weights: a little above the kernel tolerance


def optimize(*a, **k):
    from ipex.frontend import optimize as opt
    return opt(*a, **k)


def _randomize_bn(model):
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)
    return model


class ConvBnRelu(nn.Module):
    def __init__(self, cin, cout, bias):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1, bias=bias)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class CustomMethod(nn.Module):
    """Called through .inference(), with control flow an FX trace would trip on: its own
    code is not rewritten, the traceable children are."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBnRelu(3, 8, bias=False)
        self.body = ConvBnRelu(8, 8, bias=True)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6), nn.BatchNorm1d(6),
                                  nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 2))

    def forward(self, x):
        raise NotImplementedError("use inference()")

    def inference(self, x):
        y = self.stem(x)
        if y.dim() == 4 and y.shape[-1] > 1:
            y = self.body(y) + y
        return self.head(y)


def _model():
    torch.manual_seed(0)
    return _randomize_bn(CustomMethod()).eval()


def test_custom_method_reaches_the_rewrites():
    from ipex.dataflow.rewrite import rewritten_code
    from ipex.nn import FoldedBatchNorm, PackedConv, PackedLinear
    model = _model()
    x = torch.randn(3, 3, 9, 7)
    with torch.no_grad():
        ref = model.inference(x)
    with pytest.warns(UserWarning, match="could not trace the forward of CustomMethod"):
        opt = optimize(model)
    assert isinstance(opt.stem.conv, PackedConv) and opt.stem.conv._bn is not None
    assert opt.stem.conv.post_op[0] == "relu" and "relu" not in rewritten_code(opt.stem)
    assert isinstance(opt.stem.bn, FoldedBatchNorm) and isinstance(opt.body.bn, FoldedBatchNorm)
    assert isinstance(opt.head[2], PackedLinear) and opt.head[2]._bn is not None
    assert opt.head[2].post_op[0] == "relu" and isinstance(opt.head[4], nn.Identity)
    with torch.no_grad():
        assert rel_err(opt.inference(x), ref) <= OPT_TOL
        assert rel_err(opt.inference(x.contiguous(memory_format=torch.channels_last)), ref) <= OPT_TOL
        x1 = torch.randn(2, 3, 5, 1)  # the other branch of inference()
        assert rel_err(opt.inference(x1), model.inference(x1)) <= OPT_TOL
    # the original is untouched (inplace=False)
    assert type(model.stem.conv) is nn.Conv2d and type(model.stem.bn) is nn.BatchNorm2d


def test_public_parameters_keep_shapes_and_state_dict_round_trip():
    model = _model()
    opt = optimize(model)
    assert opt.stem.conv.weight.shape == model.stem.conv.weight.shape and opt.stem.conv.bias is None
    assert opt.head[2].weight.shape == model.head[2].weight.shape
    sd = opt.state_dict()
    assert list(sd.keys()) == list(model.state_dict().keys())
    for k, v in model.state_dict().items():
        assert sd[k].shape == v.shape and rel_err(sd[k], v) <= 1e-5, k
    # optimized -> a fresh original
    fresh = CustomMethod().eval()
    fresh.load_state_dict(sd)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert rel_err(fresh.inference(x), model.inference(x)) <= OPT_TOL
    # different weights from an original -> the optimized model (repacks and refolds)
    other = _randomize_bn(CustomMethod()).eval()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(1.5)
    opt.load_state_dict(other.state_dict())
    with torch.no_grad():
        assert rel_err(opt.inference(x), other.inference(x)) <= OPT_TOL
    with pytest.raises(RuntimeError, match="size mismatch"):
        bad = dict(other.state_dict())
        bad["body.conv.weight"] = torch.randn(8, 8, 5, 5)
        opt.load_state_dict(bad)


def test_optimize_twice_is_an_error():
    opt = optimize(_model())
    with pytest.raises(RuntimeError, match="already applied"):
        optimize(opt)
    model = _model()
    optimize(model, inplace=True)
    with pytest.raises(RuntimeError, match="already applied"):
        optimize(model)


def test_inplace_keeps_no_second_copy_of_the_weights():
    model = _model()
    refs = [weakref.ref(model.body.conv.weight), weakref.ref(model.head[2].weight)]
    x = torch.randn(1, 3, 8, 8)
    optimize(model, inplace=True, sample_input=None)
    with torch.no_grad():
        model.inference(x)  # packs; the plain source copy is released
    gc.collect()
    assert all(r() is None for r in refs), "the original weight tensors must be freed"


def test_copy_shares_weights_until_packed():
    model = _model()
    before = model.body.conv.weight.data_ptr()
    opt = optimize(model)
    assert model.body.conv.weight.data_ptr() == before and opt is not model


def test_levels_and_flags():
    from ipex.nn import FoldedBatchNorm
    model = _model()
    o0 = optimize(model, level="O0")
    assert type(o0.stem.conv) is nn.Conv2d and type(o0.head[5]) is nn.Dropout
    nofold = optimize(model, conv_bn_folding=False, linear_bn_folding=False)
    assert type(nofold.stem.bn) is nn.BatchNorm2d and nofold.stem.conv._bn is None
    fold_only = optimize(model, weights_prepack=False)
    assert type(fold_only.stem.conv) is nn.Conv2d and isinstance(fold_only.stem.bn, FoldedBatchNorm)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = model.inference(x)
        for m in (o0, nofold, fold_only):
            assert rel_err(m.inference(x), ref) <= OPT_TOL
    with pytest.raises(RuntimeError, match="inference only"):
        optimize(CustomMethod().train())
    with pytest.raises(ValueError, match="level"):
        optimize(model, level="O3")


def test_names_do_not_pair_layers():
    class Tricky(nn.Module):  # conv1/bn1 by name, but bn1 does not follow conv1
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(4, 4, 1)
            self.bn1 = nn.BatchNorm2d(4)

        def forward(self, x):
            return self.conv1(x) + self.bn1(x)

    model = _randomize_bn(Tricky()).eval()
    opt = optimize(model, sample_input=torch.randn(1, 4, 5, 5))
    assert opt.conv1._bn is None and type(opt.bn1) is nn.BatchNorm2d
    x = torch.randn(2, 4, 5, 5)
    with torch.no_grad():
        assert rel_err(opt(x), model(x)) <= OPT_TOL


def test_bf16_model():
    from ipex._kernels import bf16_supported
    model = _model()
    x = torch.randn(2, 3, 8, 8)
    opt = optimize(model, dtype=torch.bfloat16)
    with torch.no_grad(), torch.cpu.amp.autocast():
        out = opt.inference(x)
    with torch.no_grad():
        ref = model.inference(x)
    assert out.dtype == (torch.bfloat16 if bf16_supported() else torch.float32)
    assert rel_err(out, ref) <= BF16_TOL * 2  # two bf16 layers plus the head, in sequence


@pytest.mark.parametrize("batch_first,norm_first,act", [(True, False, "relu"), (False, True, "gelu")])
def test_transformer_encoder(batch_first, norm_first, act):
    from ipex.nn import PackedTransformerEncoderLayer
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=batch_first, norm_first=norm_first, activation=act)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(3, 7, 32) if batch_first else torch.randn(7, 3, 32)
    pad = torch.zeros(3, 7, dtype=torch.bool)
    pad[1, 5:] = True
    causal = torch.triu(torch.full((7, 7), float("-inf")), 1)
    opt = optimize(model)
    assert isinstance(opt.layers[0], PackedTransformerEncoderLayer)
    with torch.no_grad():
        for kw in ({}, {"src_key_padding_mask": pad}, {"mask": causal}):
            assert rel_err(opt(x, **kw), model(x, **kw)) <= OPT_TOL, kw
    assert list(opt.state_dict().keys()) == list(model.state_dict().keys())
    fresh = nn.TransformerEncoder(copy.deepcopy(layer), 2, enable_nested_tensor=False).eval()
    fresh.load_state_dict(opt.state_dict())
    with torch.no_grad():
        assert rel_err(fresh(x), model(x)) <= OPT_TOL


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_graph_mode_on_a_transformer_uses_the_packed_layers(dtype):
    """graph_mode would trace PyTorch's fused encoder op (which bf16 autocast breaks in
    torch 1.13): the packed eager layers are used instead, with a warning."""
    from ipex.nn import PackedTransformerEncoderLayer
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 7, 32)
    with pytest.warns(UserWarning, match="graph_mode is not applied"):
        opt = optimize(model, dtype=dtype, sample_input=x, graph_mode=True)
    assert isinstance(opt.layers[0], PackedTransformerEncoderLayer)
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=dtype == torch.bfloat16):
        out = opt(x)
    with torch.no_grad():
        ref = model(x)
    assert rel_err(out, ref) <= (OPT_TOL if dtype == torch.float32 else BF16_TOL * 2)


def test_torchvision_resnet_blocks_get_the_fused_add():
    torchvision = pytest.importorskip("torchvision")
    model = _randomize_bn(torchvision.models.resnet18(num_classes=10)).eval()
    x = torch.randn(1, 3, 64, 64)
    opt = optimize(model, sample_input=x)
    assert "forward" not in opt.layer1[0].__dict__  # no instance attribute shadows forward
    assert isinstance(opt.layer1[0], torchvision.models.resnet.BasicBlock) and opt.layer1[0].conv2.post_op[0] == "badd+relu"
    assert opt.layer2[0].conv1.post_op[0] == "relu"
    with torch.no_grad():
        assert rel_err(opt(x), model(x)) <= OPT_TOL
        x3 = torch.randn(3, 3, 48, 40)
        assert rel_err(opt(x3), model(x3)) <= OPT_TOL


class ConvLinear(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def test_an_optimized_model_traces_and_freezes():
    """The usual recipe ipex.optimize -> torch.jit.trace -> freeze: the eager fast path must
    not hide the packed layers from the tracer (the trace would hold a constant output)."""
    torch.manual_seed(0)
    model = ConvLinear().eval()
    opt = optimize(model)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(opt, x, check_trace=False))
        kinds = {n.kind() for n in traced.graph.nodes()}
        assert {"ipex::conv_run", "ipex::linear_run"} <= kinds
        other = torch.randn(3, 3, 8, 8)
        assert rel_err(traced(other), model(other)) <= OPT_TOL


def test_optimize_inside_autocast_with_sample_input():
    """Users call ipex.optimize inside `torch.cpu.amp.autocast()`; the check run of the
    original model must not hit stock PyTorch's bf16 autocast failure on encoder layers."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 128, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    x = torch.randn(2, 16, 64)
    with torch.no_grad():
        reference = model(x)
        with torch.cpu.amp.autocast():
            opt = optimize(model, dtype=torch.bfloat16, sample_input=x)
            out = opt(x)
        opt32 = optimize(model, sample_input=x)
    assert rel_err(out.float(), reference) <= BF16_TOL * 5  # two bf16 layers deep
    assert rel_err(opt32(x), reference) <= OPT_TOL


def test_a_used_optimized_model_copies_and_saves():
    """After a call the packed layers hold their (unpicklable) runners: deepcopy and
    torch.save/load must still work, and the original keeps running."""
    import io
    torch.manual_seed(0)
    model = ConvLinear().eval()
    opt = optimize(model)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        y = opt(x)
        twin = copy.deepcopy(opt)
        buf = io.BytesIO()
        torch.save(opt, buf)
        buf.seek(0)
        loaded = torch.load(buf)
        assert torch.equal(twin(x), y) and torch.equal(loaded(x), y) and torch.equal(opt(x), y)
