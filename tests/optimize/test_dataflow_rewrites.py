"""ipex.optimize()'s rewrites follow the traced data flow, never names or known classes."""
import operator

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from optimize_testutil import FP32_TOL, optimize, randomize_batch_norms, rel_err, rewritten_code, run


def prepared(model):
    torch.manual_seed(0)
    return randomize_batch_norms(model).eval()


def matches(model, opt, *shapes):
    for shape in shapes:
        x = torch.randn(*shape)
        assert rel_err(run(opt, x), run(model, x)) <= FP32_TOL, shape


class NormBeforeConv(nn.Module):
    """DenseNet's layer: the batch norm comes before the convolution named next to it."""

    def __init__(self):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(4)
        self.relu1 = nn.ReLU()
        self.conv1 = nn.Conv2d(4, 8, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(8)
        self.relu2 = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 3, 3, padding=1, bias=False)

    def forward(self, x):
        return self.conv2(self.relu2(self.norm2(self.conv1(self.relu1(self.norm1(x))))))


def test_norm_before_conv_is_not_folded_into_it():
    from ipex.nn import FoldedBatchNorm
    model = prepared(NormBeforeConv())
    opt = optimize(model)
    assert type(opt.norm1) is nn.BatchNorm2d  # nothing produces its input
    assert isinstance(opt.norm2, FoldedBatchNorm) and opt.conv1._bn is opt.norm2  # conv1 -> norm2 is real
    assert opt.conv1.post_op[0] == "relu" and isinstance(opt.relu2, nn.Identity)
    assert opt.conv2._bn is None
    matches(model, opt, (2, 4, 6, 6))


class UsedTwice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        y = self.conv(x)
        return self.bn(y) + y  # the conv output has a second user


def test_conv_output_used_twice_is_not_folded():
    model = prepared(UsedTwice())
    opt = optimize(model)
    assert opt.conv._bn is None and type(opt.bn) is nn.BatchNorm2d
    matches(model, opt, (2, 3, 5, 5))


class SharedNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)
        self.branch = nn.Sequential(self.b, self.bn)  # bn registered twice, called twice

    def forward(self, x):
        return self.bn(self.a(x)) * self.branch(x)


def test_shared_batch_norm_is_not_folded():
    model = prepared(SharedNorm())
    opt = optimize(model)
    assert type(opt.bn) is nn.BatchNorm2d and opt.bn is opt.branch[1]
    assert opt.a._bn is None and opt.b._bn is None and opt.a is not opt.b
    assert opt.b is opt.branch[0]  # still one shared module
    matches(model, opt, (1, 3, 4, 4))


class ReusedConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(self.conv(x)))  # called twice: folding would apply bn twice


def test_module_called_twice_is_not_folded():
    model = prepared(ReusedConv())
    opt = optimize(model)
    assert opt.conv._bn is None
    matches(model, opt, (1, 4, 5, 5))


class MyResidualBlock(nn.Module):
    """A hand-written residual block (not torchvision's): one shared ReLU module, in-place add."""

    def __init__(self, c, downsample):
        super().__init__()
        self.c1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.n1 = nn.BatchNorm2d(c)
        self.c2 = nn.Conv2d(c, 2 * c if downsample else c, 3, stride=2 if downsample else 1, padding=1, bias=False)
        self.n2 = nn.BatchNorm2d(2 * c if downsample else c)
        self.act = nn.ReLU(inplace=True)
        self.skip = nn.Sequential(nn.Conv2d(c, 2 * c, 1, stride=2), nn.BatchNorm2d(2 * c)) if downsample else None

    def forward(self, x):
        out = self.act(self.n1(self.c1(x)))
        out = self.n2(self.c2(out))
        out += x if self.skip is None else self.skip(x)
        return self.act(out)


class MyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(MyResidualBlock(8, False), MyResidualBlock(8, True))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.blocks(F.relu(self.stem(x))).mean((2, 3)))


def test_user_residual_block_gets_the_fused_add():
    model = prepared(MyNet())
    opt = optimize(model)
    for block in opt.blocks:
        assert isinstance(block, MyResidualBlock)  # the same class, its forward rewritten
        assert block.c1.post_op[0] == "relu" and block.c2.post_op[0] == "badd+relu"
        assert type(block.act) is nn.ReLU  # kept registered (used several times)
        code = rewritten_code(block)
        assert "self.act" not in code and "self.n1" not in code and "iadd" not in code
    assert opt.stem.post_op[0] == "relu"  # F.relu in the model's own forward
    assert isinstance(opt, MyNet) and "relu" not in rewritten_code(opt)
    assert list(opt.state_dict()) == list(model.state_dict())
    assert [n for n, _ in opt.named_modules()] == [n for n, _ in model.named_modules()]
    matches(model, opt, (2, 3, 8, 8), (1, 3, 7, 9))


class Activations(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(6, 6) for _ in range(7))

    def forward(self, x):
        x = F.relu(self.layers[0](x))
        x = self.layers[1](x).relu()
        x = torch.sigmoid(self.layers[2](x))
        x = F.gelu(self.layers[3](x), approximate="tanh")
        x = F.leaky_relu(self.layers[4](x), 0.2)
        x = F.hardtanh(self.layers[5](x), -0.5, 0.5)
        return F.relu6(self.layers[6](x), inplace=True)


class Wrapper(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def test_functional_and_method_activations_are_fused():
    model = prepared(Wrapper(Activations()))
    opt = optimize(model)
    assert isinstance(opt.inner, Activations)
    assert [layer.post_op[0] for layer in opt.inner.layers] == ["relu", "relu", "sigmoid", "gelu_tanh", "leaky_relu",
                                                           "clamp", "clamp"]
    assert opt.inner.layers[4].post_op[1] == [0.2] and opt.inner.layers[6].post_op[1] == [0.0, 6.0]
    assert "relu" not in rewritten_code(opt.inner) and "sigmoid" not in rewritten_code(opt.inner)
    matches(model, opt, (3, 6), (2, 4, 6))


class NotFusable(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 1)
        self.c = nn.Conv2d(3, 3, 1)
        self.d = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = torch.add(self.a(x), x, alpha=2)  # alpha != 1
        z = x.clone()
        z += self.b(y)  # in place into the other operand
        w = self.c(z)
        v = F.relu(w) + w  # the output has two users
        return self.d(v) - v


def test_adds_that_are_not_plain_residuals_are_left_alone():
    model = prepared(NotFusable())
    opt = optimize(model)
    assert all(getattr(opt, n).post_op[0] == "none" for n in "abcd")
    matches(model, opt, (2, 3, 4, 4))


class LinearThenNorm(nn.Module):
    def __init__(self, flatten):
        super().__init__()
        self.flatten = flatten
        self.fc = nn.Linear(5, 5)
        self.bn = nn.BatchNorm1d(5)

    def forward(self, x):
        return self.bn(self.fc(torch.flatten(x, 1) if self.flatten else x))


def test_linear_batch_norm_folds_only_when_the_input_is_provably_2d():
    from ipex.nn import FoldedBatchNorm
    flat = prepared(LinearThenNorm(True))
    opt = optimize(flat)
    assert isinstance(opt.bn, FoldedBatchNorm)
    matches(flat, opt, (4, 5, 1))
    seq = prepared(LinearThenNorm(False))  # (N, 5, 5): BatchNorm1d normalises dim 1, not features
    opt = optimize(seq)
    assert type(opt.bn) is nn.BatchNorm1d
    matches(seq, opt, (3, 5, 5), (3, 5))


class Hooked(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x))


def test_modules_with_hooks_keep_their_semantics():
    model = prepared(Hooked())
    seen = []
    model.conv.register_forward_hook(lambda m, i, o: seen.append(o.clone()))
    opt = optimize(model)
    assert type(opt.conv) is nn.Conv2d and type(opt.bn) is nn.BatchNorm2d
    x = torch.randn(1, 3, 4, 4)
    run(opt, x)
    run(model, x)
    assert torch.allclose(seen[0], seen[1])  # the hook saw the conv's own output


class CachesOnFirstCall(nn.Module):
    """Sets up a cache from its input on the first call (like torchvision's RoI poolers):
    tracing must not leave a proxy behind."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.scale = None

    def forward(self, x):
        if self.scale is None:
            self.scale = 2.0 if x.shape[-1] > 0 else 1.0
        return self.conv(x) * self.scale


def test_tracing_leaves_no_trace_on_the_model():
    model = prepared(CachesOnFirstCall())
    opt = optimize(model)
    assert opt.scale is None and model.scale is None
    matches(model, opt, (1, 3, 4, 4))


def test_bare_layers_are_packed_and_other_bare_modules_run_stock():
    from ipex.nn import PackedConv, PackedLinear
    torch.manual_seed(0)
    lin = nn.Linear(8, 3).eval()
    assert isinstance(optimize(lin), PackedLinear)
    matches(lin, optimize(lin), (2, 8))
    conv = nn.Conv2d(3, 4, 3).eval()
    assert isinstance(optimize(conv), PackedConv)
    matches(conv, optimize(conv), (1, 3, 6, 6))
    for other in (nn.ReLU(), nn.BatchNorm2d(3), nn.LayerNorm(6), nn.Sequential()):
        other.eval()
        opt = optimize(other)
        x = torch.randn(2, 3, 4, 6)
        assert torch.equal(run(opt, x), run(other, x))


def test_module_with_public_methods_is_not_replaced():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return torch.relu(self.conv(x)) + x

        def features(self, x):  # callers may use it: a GraphModule would not have it
            return self.conv(x)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = Block()

        def forward(self, x):
            return self.block(x)

    model = prepared(Net())
    opt = optimize(model)
    assert type(opt.block) is Block and opt.block.conv.post_op[0] == "none"
    matches(model, opt, (1, 3, 4, 4))
    x = torch.randn(1, 3, 4, 4)
    assert rel_err(run(opt.block.features, x), run(model.block.features, x)) <= FP32_TOL


class AddsANumber(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.b(self.a(x) + x.size(1)) + x.shape[-1] * 2


def test_a_number_is_never_a_residual_operand():
    model = prepared(Wrapper(AddsANumber()))
    opt = optimize(model)
    assert opt.inner.a.post_op[0] == "none" and opt.inner.b.post_op[0] == "none"
    matches(model, opt, (1, 3, 4, 5))


def test_attention_projections_stay_stock_modules():
    torch.manual_seed(0)
    model = nn.MultiheadAttention(16, 2, batch_first=True).eval()
    opt = optimize(Wrapper(model).eval())
    assert type(opt.inner.out_proj) is type(model.out_proj)  # MultiheadAttention reads its weight itself
    q = torch.randn(2, 5, 16)
    with torch.no_grad():
        assert rel_err(opt.inner(q, q, q)[0], model(q, q, q)[0]) <= FP32_TOL


class Noisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x) + torch.rand_like(x)  # differs from call to call


def test_a_sample_input_mismatch_returns_the_original_model():
    model = prepared(Noisy())
    with pytest.warns(UserWarning, match="differs from the original"):
        opt = optimize(model, sample_input=torch.randn(1, 3, 4, 4))
    assert type(opt.conv) is nn.Conv2d and opt is not model


class SlightlyNoisy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = self.conv(x) * 1e-2  # outputs far smaller than 1
        return y + y.abs().amax() * 5e-4 * torch.rand_like(y)  # off by up to 0.05 % of their scale


def test_the_sample_input_check_holds_results_to_the_float32_tolerance():
    model = prepared(SlightlyNoisy())
    with pytest.warns(UserWarning, match="differs from the original"):
        opt = optimize(model, sample_input=torch.randn(1, 3, 4, 4))
    assert type(opt.conv) is nn.Conv2d


def test_scripted_children_are_left_alone():
    torch.manual_seed(0)
    scripted = torch.jit.script(nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3), nn.ReLU()).eval())
    model = prepared(nn.Sequential(nn.Conv2d(3, 3, 1), scripted, nn.Conv2d(3, 2, 1)))
    opt = optimize(model)
    assert isinstance(opt[1], torch.jit.ScriptModule)
    matches(model, opt, (1, 3, 4, 4))


def test_a_sample_input_mismatch_in_place_is_an_error():
    model = prepared(Noisy())
    with pytest.raises(RuntimeError, match="inplace=False"):
        optimize(model, sample_input=torch.randn(1, 3, 4, 4), inplace=True)


class RootBlock(nn.Module):
    """Functional activations and a residual add in the model's own forward."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y += x
        return torch.relu(y)

    def inference(self, x):  # reaches its layers through forward only
        with torch.no_grad():
            return self(x) * 2


def test_the_models_own_forward_is_rewritten():
    model = prepared(RootBlock())
    opt = optimize(model)
    assert isinstance(opt, RootBlock) and type(opt).__name__ == "RootBlock"
    assert opt.conv1.post_op[0] == "relu" and opt.conv2.post_op[0] == "badd+relu"
    assert "relu" not in rewritten_code(opt) and "forward" not in opt.__dict__
    assert list(opt.state_dict()) == list(model.state_dict())
    matches(model, opt, (2, 4, 6, 6), (1, 4, 5, 7))
    x = torch.randn(1, 4, 5, 5)
    assert rel_err(opt.inference(x), model.inference(x)) <= FP32_TOL


class RootWithFeatures(RootBlock):
    def features(self, x):  # calls conv1 and bn1 itself: they must stay what they were
        return self.bn1(self.conv1(x))


def test_layers_another_method_calls_are_left_alone():
    model = prepared(RootWithFeatures())
    with pytest.warns(UserWarning, match=r"RootWithFeatures.features\(\)"):
        opt = optimize(model)
    assert opt.conv1.post_op[0] == "none" and type(opt.bn1) is nn.BatchNorm2d
    assert opt.conv2.post_op[0] == "badd+relu"  # not reachable from features()
    x = torch.randn(1, 4, 5, 5)
    assert rel_err(run(opt.features, x), run(model.features, x)) <= FP32_TOL
    matches(model, opt, (1, 4, 5, 5))


def _helper(module, x):
    return module.conv1(x)


class GivesSelfAway(RootBlock):
    def probe(self, x):
        return _helper(self, x)


def test_a_method_giving_self_away_keeps_every_layer():
    model = prepared(GivesSelfAway())
    with pytest.warns(UserWarning, match=r"GivesSelfAway.probe\(\)"):
        opt = optimize(model)
    assert opt.conv1.post_op[0] == "none" and opt.conv2.post_op[0] == "none"
    x = torch.randn(1, 4, 5, 5)
    assert rel_err(run(opt.probe, x), run(model.probe, x)) <= FP32_TOL


class InPlaceAlias(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 3, 1)
        self.b = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        y = self.a(x)
        alias = y
        y += x  # in place: `alias` sees the sum
        return F.relu(self.b(alias * 2 + y))


def test_in_place_operators_keep_their_aliasing():
    model = prepared(InPlaceAlias())
    opt = optimize(model)
    assert opt.b.post_op[0] == "relu" and "+=" in rewritten_code(opt)  # rewritten, the += kept
    matches(model, opt, (1, 3, 4, 4))
