"""Nested modules; inputs by keyword (keyword-only too); tuple, dict and namedtuple answers."""
import collections

import torch
from torch import nn

import record

Pair = collections.namedtuple("Pair", "logits features")


class Block(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(width, width)

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList(Block(16) for _ in range(3))
        self.head = nn.Linear(16, 4)

    def forward(self, x, mask=None, *, scale=1.0):
        for block in self.blocks:
            x = block(x)
        if mask is not None:
            x = x * mask
        return self.head(x) * scale


class TupleNet(Net):
    def forward(self, x):
        out = super().forward(x)
        return out, {"features": x.sum(-1), "max": out.max(-1).values}


class NamedNet(Net):
    def forward(self, x):
        return Pair(super().forward(x), x)


torch.manual_seed(0)
x = torch.randn(5, 16)
mask = (torch.rand(5, 16) > 0.5).float()
results = {}
for cls in (Net, TupleNet, NamedNet):
    model = cls().eval()
    with torch.no_grad():
        answers = [model(x), model(x), model(x=x)]
    results[cls.__name__ + " types"] = [type(a).__name__ for a in answers]
    results[cls.__name__] = [tuple(a) if isinstance(a, Pair) else a for a in answers]
    if cls is Net:
        with torch.no_grad():
            results["mask"] = [model(x, mask), model(x, mask=mask), model(x=x, mask=mask)]
            results["scale"] = [model(x, scale=3.0), model(x, mask, scale=0.5), model(x, scale=3.0)]
    results[cls.__name__ + " facts"] = record.model_facts(model)
record.save(results)
