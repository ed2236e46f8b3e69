"""Python control flow in forward: a shape-dependent branch, a raise, a flag attribute."""
import torch
from torch import nn

import record


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.small = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
        self.large = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3))
        self.use_bias_path = False

    def forward(self, x):
        if x.shape[-1] != 8:
            raise ValueError(f"expected 8 features, got {x.shape[-1]}")
        out = self.large(x) if x.shape[0] > 2 else self.small(x)
        if self.use_bias_path:
            out = out + 1
        return out


torch.manual_seed(0)
model = Branchy().eval()
results = {"answers": [], "errors": []}
with torch.no_grad():
    for batch in (4, 4, 1, 4, 2, 3, 1):
        results["answers"].append(model(torch.randn(batch, 8)))
    for bad in (torch.randn(4, 9), torch.randn(1, 2)):
        try:
            model(bad)
        except ValueError as e:
            results["errors"].append(str(e))
    results["after errors"] = model(torch.ones(4, 8))
    model.use_bias_path = True
    results["flag on"] = [model(torch.ones(4, 8)), model(torch.ones(1, 8))]
    model.use_bias_path = False
    results["flag off"] = model(torch.ones(4, 8))
results["facts"] = record.model_facts(model)
record.save(results)
