"""Weights changed after the first call are followed: load_state_dict, in-place edits through
the tensor, through .data and through no_grad, a replaced layer, a buffer, a new Parameter."""
import torch
from torch import nn

import record


def make():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(),
                          nn.Linear(6 * 6 * 6, 4))
    return model.eval()


def no_grad(fn):
    def run(model):
        with torch.no_grad():
            fn(model)
    return run


torch.manual_seed(1)
x = torch.randn(2, 3, 8, 8)
other = make()
with torch.no_grad():
    for p in other.parameters():
        p.mul_(-0.5)
# Each change on a fresh model whose copy is in use (two calls before, two after).
changes = {
    "load_state_dict": lambda m: m.load_state_dict(other.state_dict()),
    "data mul": lambda m: m[0].weight.data.mul_(2),
    "no_grad add": no_grad(lambda m: m[4].weight.add_(0.1)),
    "running mean": lambda m: m[1].running_mean.fill_(0.5),
    "bn eps": lambda m: setattr(m[1], "eps", 0.5),
    "new parameter": lambda m: setattr(m[4], "bias", nn.Parameter(torch.ones(4))),
    "data assigned": lambda m: setattr(m[0].bias, "data", torch.full((6,), 2.0)),
    "replaced layer": lambda m: m.__setitem__(2, nn.Tanh()),
    "train then eval": lambda m: m.train().eval(),
}
results = {}
for name, change in changes.items():
    model = make()
    with torch.no_grad():
        before = [model(x), model(x)]
    change(model)
    with torch.no_grad():
        results[name] = before + [model(x), model(x)]
    results[name + " facts"] = record.model_facts(model)
# Changes on every call: the model ends up running as it is.
model = make()
results["every call"] = []
for step in range(6):
    with torch.no_grad():
        model[4].weight.mul_(0.9)
        results["every call"].append(model(x))
record.save(results)
