"""An optimized model is an ordinary nn.Module: copies, saves, state dicts, custom methods,
graph mode only where its trace is faithful, bf16 BERT-style models."""
import copy
import io
import pickle

import pytest
import torch
from torch import fx, nn

from optimize_testutil import BF16_TOL, FP32_TOL, optimize, randomize_batch_norms, rel_err, rewritten_code, run
from test_dataflow_rewrites import MyNet, MyResidualBlock


def net():
    torch.manual_seed(0)
    return randomize_batch_norms(MyNet()).eval()


X = torch.randn(2, 3, 8, 8)


def test_state_dict_keys_and_values_are_the_original_ones():
    model = net()
    opt = optimize(model)
    sd, ref = opt.state_dict(), model.state_dict()
    assert list(sd) == list(ref)
    for k in ref:
        assert sd[k].shape == ref[k].shape and sd[k].dtype == ref[k].dtype, k
        assert torch.allclose(sd[k], ref[k], rtol=1e-5, atol=1e-6), k
    fresh = MyNet().eval()
    fresh.load_state_dict(sd)
    assert rel_err(run(fresh, X), run(model, X)) <= FP32_TOL


def test_load_state_dict_repacks_folded_and_fused_layers():
    model, other = net(), net()
    with torch.no_grad():
        for p in other.parameters():
            p.mul_(1.5)
        for b in other.buffers():
            if b.is_floating_point():
                b.mul_(0.8)
    opt = optimize(model)
    opt.load_state_dict(other.state_dict())
    assert rel_err(run(opt, X), run(other, X)) <= FP32_TOL


def test_deepcopy_is_independent():
    model = net()
    opt = optimize(model)
    before = run(opt, X)
    twin = copy.deepcopy(opt)
    assert rel_err(run(twin, X), before) <= 1e-6
    assert isinstance(twin, MyNet) and twin.stem is not opt.stem and twin.stem.post_op[0] == "relu"
    changed = net()
    with torch.no_grad():
        for p in changed.parameters():
            p.add_(0.3)
    twin.load_state_dict(changed.state_dict())
    assert rel_err(run(twin, X), run(changed, X)) <= FP32_TOL
    assert torch.equal(run(opt, X), before)  # the original optimized model did not change
    assert rel_err(run(model, X), before) <= FP32_TOL  # nor did the stock model


def test_optimized_copy_never_writes_into_the_original():
    model = net()
    ref = run(model, X)
    opt = optimize(model)
    changed = net()
    with torch.no_grad():
        for p in changed.parameters():
            p.mul_(-1)
    opt.load_state_dict(changed.state_dict())
    assert torch.equal(run(model, X), ref)


def linear_net():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(24, 64), nn.GELU(), nn.Linear(64, 64), nn.Linear(64, 8)).eval()


@pytest.mark.parametrize("how", ["copy", "inplace", "graph_mode"])
@pytest.mark.parametrize("make,x", [(net, X), (linear_net, torch.randn(5, 24))], ids=["convs", "linears"])
def test_editing_the_original_never_changes_the_optimized_model(how, make, x):
    """Kernels may read a weight where it is (float32 linears where the kernel wants a plain
    layout): the optimized model still holds its own, also of the biases."""
    model = make()
    handles = list(model.parameters()) + list(model.buffers())  # as an optimizer or a list keeps them
    want = run(model, x)
    kwargs = {"copy": {}, "inplace": {"inplace": True}, "graph_mode": {"graph_mode": True, "sample_input": x}}[how]
    opt = optimize(model, **kwargs)
    assert rel_err(run(opt, x), want) <= FP32_TOL
    still_held = {id(t) for t in list(opt.parameters()) + list(opt.buffers())} if how == "inplace" else set()
    edited = [t for t in handles if t.is_floating_point() and id(t) not in still_held]
    assert edited
    with torch.no_grad():
        for t in edited:
            t.mul_(-1.5)
    assert rel_err(run(opt, x), want) <= FP32_TOL


def test_loaded_and_assigned_tensors_are_copied():
    opt, src = optimize(linear_net()), linear_net()
    with torch.no_grad():
        for p in src.parameters():
            p.mul_(2)
    opt.load_state_dict(src.state_dict())  # state_dict() tensors are src's own
    x = torch.randn(5, 24)
    want = run(src, x)
    with torch.no_grad():
        for p in src.parameters():
            p.mul_(-1)
    assert rel_err(run(opt, x), want) <= FP32_TOL
    w, b = torch.randn(64, 64), torch.randn(64)
    opt[2].weight, opt[2].bias = nn.Parameter(w), nn.Parameter(b)
    want = run(opt, x)
    with torch.no_grad():
        w.mul_(-1)
        b.add_(1)
    assert torch.equal(run(opt, x), want)


@pytest.mark.parametrize("how", ["torch.save", "pickle"])
def test_whole_module_saves_and_loads(how):
    opt = optimize(net())
    expected = run(opt, X)  # after a call, too (the layers hold runners then)
    if how == "pickle":
        loaded = pickle.loads(pickle.dumps(opt))
    else:
        buf = io.BytesIO()
        torch.save(opt, buf)
        buf.seek(0)
        loaded = torch.load(buf)
    assert torch.equal(run(loaded, X), expected)
    assert isinstance(loaded.blocks[0], MyResidualBlock) and loaded.blocks[0].c2.post_op[0] == "badd+relu"
    assert rewritten_code(loaded.blocks[0]) == rewritten_code(opt.blocks[0])
    assert isinstance(loaded, MyNet) and loaded.stem.post_op[0] == "relu"  # the model's own forward rewritten
    assert rewritten_code(loaded) == rewritten_code(opt)
    assert list(loaded.state_dict()) == list(opt.state_dict())


def test_no_callable_instance_attributes():
    opt = optimize(net(), sample_input=X)
    for name, m in opt.named_modules():
        assert "forward" not in m.__dict__, name
    assert [n for n, _ in opt.named_modules()] == [n for n, _ in net().named_modules()]


def test_to_and_trace_freeze_save():
    model = net()
    opt = optimize(model).to(torch.float32)
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(opt, X, check_trace=False))
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
        buf.seek(0)
        loaded = torch.jit.load(buf)
        other = torch.randn(1, 3, 6, 10)
        assert rel_err(loaded(other), model(other)) <= FP32_TOL


class ShapeBranch(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        if x.shape[0] == 1:
            return self.bn(self.conv(x)) * 2
        if x.dim() != 4:
            raise ValueError("4-D input please")
        return self.bn(self.conv(x))


def test_graph_mode_never_drops_python_control_flow():
    torch.manual_seed(0)
    model = randomize_batch_norms(ShapeBranch()).eval()
    with pytest.warns(UserWarning, match="graph_mode not applied"):
        opt = optimize(model, graph_mode=True, sample_input=torch.randn(1, 3, 5, 5))
    assert not isinstance(opt, torch.jit.ScriptModule)
    for batch in (1, 3):
        x = torch.randn(batch, 3, 5, 5)
        assert rel_err(run(opt, x), run(model, x)) <= FP32_TOL
    with pytest.raises(ValueError, match="4-D"):
        run(opt, torch.randn(3, 3, 5))


def test_graph_mode_is_used_where_the_trace_is_faithful():
    model = net()
    opt = optimize(model, graph_mode=True, sample_input=X)
    assert isinstance(opt, torch.jit.ScriptModule)
    assert rel_err(run(opt, X), run(model, X)) <= FP32_TOL


class TinyBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 32)
        self.norm = nn.LayerNorm(32)
        self.attn = nn.Linear(32, 32)
        self.norm2 = nn.LayerNorm(32)
        self.ff = nn.Sequential(nn.Linear(32, 64), nn.GELU(), nn.Linear(64, 32))
        self.group = nn.GroupNorm(4, 32)

    def forward(self, ids):
        h = self.norm(self.embed(ids))
        h = self.norm2(self.attn(h) + h)
        h = self.ff(h) + h
        return self.group(h.transpose(1, 2))


def test_bf16_embedding_layer_norm_model_runs():
    torch.manual_seed(0)
    model = TinyBert().eval()
    ids = torch.randint(0, 50, (2, 7))
    ref = run(model, ids)
    opt = optimize(model, dtype=torch.bfloat16)
    assert opt.embed.weight.dtype == torch.float32
    out = run(opt, ids, bf16=True)
    assert rel_err(out, ref) <= BF16_TOL
    assert list(opt.state_dict()) == list(model.state_dict())
    with torch.no_grad():  # bf16 activations straight into the norms (a CPU with native bf16 makes them)
        h = torch.randn(2, 7, 32)
        assert rel_err(opt.norm(h.bfloat16()), model.norm(h.bfloat16().float())) <= 1e-5


def test_custom_method_reaches_child_rewrites():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = MyNet()

        def forward(self, x):
            raise NotImplementedError("call inference()")

        def inference(self, x):
            return self.body(x) * (2 if x.shape[0] > 1 else 1)

    torch.manual_seed(0)
    model = randomize_batch_norms(Model()).eval()
    with pytest.warns(UserWarning, match="could not trace"):
        opt = optimize(model)
    assert rewritten_code(opt.body.blocks[0]) is not None
    for batch in (1, 2):
        x = torch.randn(batch, 3, 8, 8)
        assert rel_err(run(opt.inference, x), run(model.inference, x)) <= FP32_TOL


def test_script_of_an_optimized_model():
    """torch.jit.script works where the original scripts, rewritten children included."""
    model = net()
    torch.jit.script(model)
    scripted = torch.jit.script(optimize(model))
    for shape in ((2, 3, 8, 8), (1, 3, 6, 10)):
        x = torch.randn(*shape)
        assert rel_err(run(scripted, x), run(model, x)) <= FP32_TOL


def test_empty_batch():
    model = net()
    out = run(optimize(model), torch.randn(0, 3, 8, 8))
    assert out.shape == run(model, torch.randn(0, 3, 8, 8)).shape


def test_state_dict_after_the_layers_ran_in_several_layouts():
    """A layer whose packed weight was asked for in several layouts (input shapes that pick
    different oneDNN kernels) still gives its weight back."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(64, 3, 3, padding=1), nn.Conv2d(3, 4, 3, padding=3)).eval()
    opt = optimize(model)
    for shape in ((1, 64, 16, 16), (2, 64, 5, 7), (1, 64, 1, 1)):
        x = torch.randn(*shape)
        assert rel_err(run(opt, x), run(model, x)) <= FP32_TOL
    state = opt.state_dict()
    for key, value in model.state_dict().items():
        assert torch.equal(state[key], value), key


class Recurrent(nn.Module):
    """A conv feature extractor feeding a recurrent layer (whose forward reads its own list of
    references to its parameters, _flat_weights)."""

    def __init__(self, kind):
        super().__init__()
        self.conv = nn.Conv1d(4, 6, 3, padding=1)
        self.rnn = getattr(nn, kind)(6, 5, num_layers=2)

    def forward(self, x):
        out = self.rnn(self.conv(x).permute(2, 0, 1))
        return out[0]


@pytest.mark.parametrize("kind", ["RNN", "LSTM", "GRU"])
def test_recurrent_layers_use_the_optimized_models_own_weights(kind):
    torch.manual_seed(0)
    model, other = Recurrent(kind).eval(), Recurrent(kind).eval()
    x = torch.randn(2, 4, 7)
    want = run(model, x)
    opt = optimize(model)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-2)
    assert rel_err(run(opt, x), want) <= FP32_TOL  # editing the original changes nothing
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(opt, x, check_trace=False))  # no tensor captured as a constant
    assert rel_err(traced(x), want) <= FP32_TOL
    opt.load_state_dict(other.state_dict())
    assert rel_err(run(opt, x), run(other, x)) <= FP32_TOL  # loading reaches the recurrent layer


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_moved_to_another_dtype_runs_like_stock(dtype, norm_first):
    torch.manual_seed(0)
    model = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, norm_first=norm_first, activation="gelu").eval()
    x = torch.randn(3, 5, 8)
    opt = optimize(model).to(dtype)
    want = run(copy.deepcopy(model).to(dtype), x.to(dtype))
    got = run(opt, x.to(dtype))
    assert got.dtype == want.dtype == dtype
    assert rel_err(got, want) <= (FP32_TOL if dtype == torch.float64 else BF16_TOL)


def test_training_mode_never_answers_with_folded_batch_norms():
    """Stock's batch norm uses the batch's statistics in training mode: a layer holding a
    folded one refuses to run then (a clear error instead of an answer 80 % off); back in
    eval mode it answers as before."""
    model = net()
    opt = optimize(model)
    want = run(opt, X)
    opt.train()
    with pytest.raises(RuntimeError, match="training mode"):
        opt(X)
    opt.eval()
    assert torch.equal(run(opt, X), want)
