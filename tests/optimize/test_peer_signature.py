"""Programs written for the peer call ipex.optimize with its signature: an optimizer for
training (the result is (model, optimizer)), positional arguments in its order, and flags this
implementation has no use for. None of them may fail or change an answer."""
import copy
import warnings

import pytest
import torch
from torch import nn

from optimize_testutil import FP32_TOL, optimize, randomize_batch_norms, rel_err


def Net():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.5), nn.Linear(8, 4))


def net(seed=0):
    torch.manual_seed(seed)
    return randomize_batch_norms(Net())


def train_steps(model, optimizer, steps=3, autocast=False):
    torch.manual_seed(7)  # the same dropout masks and data on both sides
    losses = []
    for _ in range(steps):
        x, target = torch.randn(4, 3, 8, 8), torch.randn(4, 4)
        optimizer.zero_grad()
        with torch.cpu.amp.autocast(enabled=autocast):
            loss = nn.functional.mse_loss(model(x).float(), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("autocast", [False, True])
@pytest.mark.parametrize("make_optimizer", [
    lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    lambda p: torch.optim.Adam(p, lr=1e-2),
], ids=["sgd", "adam"])
def test_training_with_an_optimizer_matches_stock_step_for_step(make_optimizer, autocast):
    model = net().train()
    optimizer = make_optimizer(model.parameters())
    reference = copy.deepcopy((model, optimizer))
    dtype = torch.bfloat16 if autocast else None
    with pytest.warns(UserWarning, match="stock PyTorch layers"):
        got_model, got_optimizer = optimize(model, dtype=dtype, optimizer=optimizer)
    assert got_model is not model and got_optimizer is not optimizer
    # The copy's optimizer steps the copy's parameters, not the original's.
    copied = {id(p) for p in got_model.parameters()}
    assert all(id(p) in copied for g in got_optimizer.param_groups for p in g["params"])
    before = copy.deepcopy(model.state_dict())
    assert train_steps(got_model, got_optimizer, autocast=autocast) == train_steps(*reference, autocast=autocast)
    for key, value in reference[0].state_dict().items():
        assert torch.equal(got_model.state_dict()[key], value), key
    for key, value in model.state_dict().items():  # the original did not move
        assert torch.equal(before[key], value), key


def test_an_optimizer_keeps_its_state_in_the_copy():
    model = net().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    train_steps(model, optimizer, steps=1)
    reference = copy.deepcopy((model, optimizer))
    got_model, got_optimizer = quiet(optimize, model, optimizer=optimizer)
    params = list(got_model.parameters())
    assert len(got_optimizer.state) == len(params)
    assert all(p in got_optimizer.state for p in params)
    assert train_steps(got_model, got_optimizer) == train_steps(*reference)


def test_inplace_training_returns_the_same_objects():
    model = net().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    got = quiet(optimize, model, optimizer=optimizer, inplace=True)
    assert got[0] is model and got[1] is optimizer


def test_an_optimizer_with_an_eval_model_is_refused_naming_train():
    model = net().eval()
    with pytest.raises(RuntimeError, match=r"model\.train\(\)"):
        optimize(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="torch.optim.Optimizer"):
        optimize(model.train(), optimizer=object())
    with pytest.raises(ValueError, match="level"):
        optimize(model.train(), optimizer=torch.optim.SGD(model.parameters(), lr=0.1), level="O9")


def test_positional_arguments_follow_the_peers_order():
    model = net().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    got = quiet(optimize, model, torch.float32, optimizer, "O1", True)  # dtype, optimizer, level, inplace
    assert got == (model, optimizer)
    model.eval()
    o0 = optimize(model, None, None, "O0")
    assert type(o0[0]) is nn.Conv2d and type(o0[5]) is nn.Dropout


def test_the_peers_other_flags_are_accepted_and_change_no_answer():
    model = net().eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        ref = model(x)
        opt = optimize(model, optimize_lstm=True, split_master_weight_for_bf16=True, fuse_update_step=True,
                       auto_kernel_selection=True, concat_linear=True)
        assert rel_err(opt(x), ref) <= FP32_TOL


def test_graph_mode_without_sample_input_runs_the_eager_rewrites_with_a_warning():
    model = net().eval()
    x = torch.randn(2, 3, 8, 8)
    with pytest.warns(UserWarning, match="without sample_input"):
        opt = optimize(model, graph_mode=True)
    assert not isinstance(opt, torch.jit.ScriptModule)
    with torch.no_grad():
        assert rel_err(opt(x), model(x)) <= FP32_TOL


def test_the_peers_package_name_trains_too():
    import intel_extension_for_pytorch as peer
    model = net().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    got_model, got_optimizer = quiet(peer.optimize, model, optimizer=optimizer, dtype=torch.bfloat16)
    assert isinstance(got_model, nn.Sequential) and isinstance(got_optimizer, torch.optim.SGD)
    assert len(train_steps(got_model, got_optimizer, autocast=True)) == 3


def test_the_package_version_is_the_launchers(ipexrun):
    import subprocess
    import intel_extension_for_pytorch as peer
    printed = subprocess.run([ipexrun, "--version"], capture_output=True, text=True, check=True).stdout
    assert printed.split() == ["ipexrun", peer.__version__]
