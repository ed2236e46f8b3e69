"""Packed layers are ordinary nn.Modules for every PyTorch workflow: torch.jit.trace + freeze
+ save/load, torch.jit.script, deepcopy, pickle, torch.save of the whole module, .to(),
named_modules(), state_dict keys and load_state_dict (which repacks)."""
import copy
import io
import pickle

import pytest
import torch
from torch import nn

from kernels_testutil import rel_err

TOL = 1e-4


def _packed_models():
    """(name, stock model, packed model, input) for a conv net and transformer encoders."""
    from ipex.nn import PackedConv, PackedLinear, PackedTransformerEncoderLayer
    torch.manual_seed(0)
    conv_net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(8, 4, 2, stride=2),
                             nn.Flatten(), nn.Linear(4 * 12 * 12, 5)).eval()
    packed_net = copy.deepcopy(conv_net)
    packed_net[0], packed_net[2], packed_net[4] = (PackedConv(conv_net[0]), PackedConv(conv_net[2]),
                                                  PackedLinear(conv_net[4]))
    packed_net[0].fuse_activation("relu", [])
    packed_net[1] = nn.Identity()
    models = [("conv_net", conv_net, packed_net, torch.randn(2, 3, 6, 6))]
    for batch_first, norm_first in ((False, False), (True, True)):
        layer = nn.TransformerEncoderLayer(16, 4, 32, 0.0, batch_first=batch_first, norm_first=norm_first)
        enc = nn.TransformerEncoder(layer, 2, norm=nn.LayerNorm(16)).eval()
        penc = copy.deepcopy(enc)
        for i, l in enumerate(penc.layers):
            penc.layers[i] = PackedTransformerEncoderLayer(l)
        src = torch.randn(2, 5, 16) if batch_first else torch.randn(5, 2, 16)
        models.append((f"encoder_bf{int(batch_first)}_nf{int(norm_first)}", enc, penc, src))
    from ipex.nn import PackedTransformerEncoder
    layer = nn.TransformerEncoderLayer(16, 4, 32, 0.0, batch_first=True, activation="gelu")
    enc = nn.TransformerEncoder(layer, 2).eval()
    models.append(("packed_encoder_bf1", enc, PackedTransformerEncoder(enc), torch.randn(2, 5, 16)))
    return models


N_MODELS = 4




@pytest.fixture(scope="module")
def models(kops):
    return _packed_models()


def _check(model, ref_model, x):
    with torch.no_grad():
        assert rel_err(model(x), ref_model(x)) <= TOL


@pytest.mark.parametrize("index", range(N_MODELS))
def test_trace_freeze_save_load(models, index):
    name, stock, packed, x = models[index]
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(packed, x).eval())
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        buf.seek(0)
        loaded = torch.jit.load(buf)
    assert "ipex::" in str(loaded.graph) or "ipex::" in str(loaded.inlined_graph), name
    _check(loaded, stock, x)
    # a second input size runs through the same saved contexts
    x2 = torch.cat([x, x], 0 if x.dim() == 4 or name.startswith("encoder_bf1") else 1)
    _check(loaded, stock, x2)


@pytest.mark.parametrize("index", range(N_MODELS))
def test_script_freeze_save_load(models, index):
    name, stock, packed, x = models[index]
    scripted = torch.jit.script(packed)
    _check(scripted, stock, x)
    frozen = torch.jit.freeze(scripted.eval())
    buf = io.BytesIO()
    torch.jit.save(frozen, buf)
    buf.seek(0)
    _check(torch.jit.load(buf), stock, x)


def test_scripted_layer_keeps_unbatched_and_residual_paths(kops):
    from ipex.nn import PackedConv
    conv = nn.Conv2d(3, 4, 3, padding=1).eval()
    p = PackedConv(conv)
    p.post_op = ("badd+relu", [])
    s = torch.jit.script(p)
    x, other = torch.randn(3, 6, 6), torch.randn(4, 6, 6)
    with torch.no_grad():
        assert rel_err(s(x, other), torch.relu(conv(x) + other)) <= TOL
    # scripted code reading the layer's weight and bias gets the original ones
    reader = torch.jit.script(_ReadsWeight(p))
    w, b = reader(x)
    assert torch.equal(w, conv.weight) and torch.equal(b, conv.bias)


class _ReadsWeight(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        b = self.layer.bias
        assert b is not None
        return self.layer.weight, b


def test_deepcopy_is_independent(models):
    name, stock, packed, x = models[1]
    twin = copy.deepcopy(packed)
    attn, twin_attn = packed.layers[0].self_attn, twin.layers[0].self_attn
    assert twin_attn.in_proj._ctx is not attn.in_proj._ctx
    sd = {k: torch.zeros_like(v) if "in_proj" in k else v for k, v in stock.state_dict().items()}
    twin.load_state_dict(sd)
    assert torch.count_nonzero(twin_attn.in_proj_weight) == 0
    _check(packed, stock, x)  # the original is untouched
    assert torch.equal(attn.in_proj_weight, stock.layers[0].self_attn.in_proj_weight)


def test_state_dict_keys_and_load_repacks(models):
    for name, stock, packed, x in models:
        assert list(packed.state_dict().keys()) == list(stock.state_dict().keys()), name
        for k, v in packed.state_dict().items():
            assert v.shape == stock.state_dict()[k].shape and rel_err(v, stock.state_dict()[k]) <= 1e-6, k
        other = copy.deepcopy(stock)
        torch.manual_seed(5)
        for p in other.parameters():
            p.data.normal_()
        twin = copy.deepcopy(packed)
        twin.load_state_dict(other.state_dict())  # strict
        _check(twin, other, x)
        with pytest.raises(RuntimeError, match="Unexpected key"):
            twin.load_state_dict({**other.state_dict(), "extra.weight": torch.zeros(1)})


def test_in_proj_is_registered(models):
    _, _, packed, _ = models[1]
    names = dict(packed.named_modules())
    assert "layers.0.self_attn.in_proj" in names
    assert "layers.0.self_attn.out_proj" in names


def test_pickle_and_torch_save_of_whole_modules(models):
    for name, stock, packed, x in models:
        with torch.no_grad():
            packed(x)  # a used module holds its runner, which is not pickled
        for restored in (pickle.loads(pickle.dumps(packed)), _save_load(packed)):
            _check(restored, stock, x)


def _save_load(module):
    buf = io.BytesIO()
    torch.save(module, buf)
    buf.seek(0)
    return torch.load(buf)


def test_to_and_eval_keep_working(models):
    name, stock, packed, x = models[0]
    moved = copy.deepcopy(packed).to("cpu").to(torch.float32).eval()
    _check(moved, stock, x)
    # a dtype change moves the weights as it moves parameters: .double() runs in float64
    doubled = copy.deepcopy(packed).double()
    with torch.no_grad():
        out, ref = doubled(x.double()), copy.deepcopy(stock).double()(x.double())
    assert out.dtype == torch.float64 and rel_err(out, ref) <= 1e-12
    back = doubled.float()
    _check(back, stock, x)
    assert back[0]._ctx.compute_dtype() == 6  # float32 again: packed for oneDNN


def test_unbatched_transformer_like_stock(models):
    for name, stock, packed, x in models[1:]:
        seq = x[0] if "bf1" in name else x[:, 0]
        _check(packed, stock, seq)
        kpm = torch.tensor([False, False, False, True, True])
        with torch.no_grad():
            ref = stock(seq, src_key_padding_mask=kpm)
            out = packed(seq, src_key_padding_mask=kpm)
        assert rel_err(out, ref) <= TOL


def test_transformer_input_wanting_gradients(models):
    name, stock, packed, x = models[1]
    weights = torch.randn_like(x)  # a plain sum has ~0 gradient through a layer norm
    x1 = x.clone().requires_grad_(True)
    (stock(x1) * weights).sum().backward()
    x2 = x.clone().requires_grad_(True)
    (packed(x2) * weights).sum().backward()
    assert rel_err(x2.grad, x1.grad) <= TOL


def test_packed_encoder_gives_stock_nested_tensor_results(models):
    """Stock 1.13 runs a padded batch-first batch as a nested tensor: zeros at the padded
    positions, the sequence cut to the longest kept prefix."""
    _, stock, packed, _ = models[3]
    torch.manual_seed(3)
    src = torch.randn(3, 6, 16)
    left_aligned = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    scattered = torch.tensor([[0, 1, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1], [1, 0, 0, 0, 0, 0]], dtype=torch.bool)
    scripted = torch.jit.script(packed)
    for kpm in (left_aligned, scattered, left_aligned.float() * -1e9):
        with torch.no_grad():
            ref = stock(src, src_key_padding_mask=kpm)
            for model in (packed, scripted):
                out = model(src, src_key_padding_mask=kpm)
                assert out.shape == ref.shape
                assert rel_err(out, ref) <= TOL
    with torch.no_grad():
        assert stock(src, src_key_padding_mask=left_aligned).shape == (3, 5, 16)
    with torch.enable_grad():  # stock takes the ordinary path when its weights want gradients
        ref = stock(src, src_key_padding_mask=left_aligned)
        out = packed(src, src_key_padding_mask=left_aligned)
    assert out.shape == ref.shape == (3, 6, 16) and rel_err(out.detach(), ref.detach()) <= TOL


def test_optimize_packs_a_whole_encoder(kops):
    import ipex
    from ipex.nn import PackedTransformerEncoder
    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(16, 4, 32, 0.0, batch_first=True)
    model = nn.Sequential(nn.Linear(8, 16), nn.TransformerEncoder(layer, 2)).eval()
    opt = ipex.optimize(model)
    assert isinstance(opt[1], PackedTransformerEncoder)
    x = torch.randn(2, 6, 8)
    kpm = torch.tensor([[0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        ref = model[1](model[0](x), src_key_padding_mask=kpm)
        out = opt[1](opt[0](x), src_key_padding_mask=kpm)
    assert out.shape == ref.shape == (2, 4, 16) and rel_err(out, ref) <= TOL


class _SizedDeconv(nn.Module):
    def __init__(self, deconv):
        super().__init__()
        self.deconv = deconv

    def forward(self, x):
        return self.deconv(x, output_size=[x.size(2) * 2, x.size(3) * 2])


def test_transposed_output_size_in_script_and_trace(kops):
    from ipex.nn import PackedConv
    torch.manual_seed(6)
    m = nn.ConvTranspose2d(4, 3, 3, stride=2, padding=1).eval()
    ref_model, packed = _SizedDeconv(m), _SizedDeconv(PackedConv(m))
    x = torch.randn(1, 4, 5, 6)
    with torch.no_grad():
        ref = ref_model(x)
        _check(packed, ref_model, x)  # eager first: its cached variant must not upset scripting
        for compiled in (torch.jit.script(packed), torch.jit.trace(packed, x)):
            assert rel_err(compiled(x), ref) <= TOL


def test_script_with_padding_modes(kops):
    from ipex.nn import PackedConv
    for mode in ("reflect", "replicate", "circular"):
        m = nn.Conv2d(3, 4, 3, padding=1, padding_mode=mode).eval()
        s = torch.jit.script(PackedConv(m))
        x = torch.randn(2, 3, 7, 6)
        with torch.no_grad():
            assert rel_err(s(x), m(x)) <= TOL
            if mode != "circular":  # stock 1.13 pads unbatched inputs circularly only in 1-D
                assert rel_err(s(x[0]), m(x[0])) <= TOL


def test_assigning_weight_and_bias_repacks(kops):
    from ipex.nn import PackedConv, PackedLinear
    torch.manual_seed(7)
    for stock, x in ((nn.Linear(5, 4).eval(), torch.randn(3, 5)), (nn.Conv2d(3, 4, 3).eval(), torch.randn(1, 3, 6, 6))):
        packed = PackedLinear(stock) if isinstance(stock, nn.Linear) else PackedConv(stock)
        stock.weight = nn.Parameter(torch.randn_like(stock.weight))
        packed.weight = nn.Parameter(stock.weight.detach().clone())
        stock.bias = None
        packed.bias = None
        assert packed.bias is None and "bias" not in packed.state_dict()
        with torch.no_grad():
            assert rel_err(packed(x), stock(x)) <= TOL
