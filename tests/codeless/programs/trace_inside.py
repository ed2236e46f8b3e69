"""The program's own torch.jit.trace, torch.jit.script, ipex.optimize and torch.fx runs."""
import sys

import torch
import torch.fx
from torch import nn

import record

ipex = __import__(sys.argv[2])  # ipex or intel_extension_for_pytorch


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        return self.fc(y.mean((2, 3)))


torch.manual_seed(0)
model = Net().eval()
x = torch.randn(2, 3, 12, 12)
results = {}
with torch.no_grad():
    results["before"] = model(x)
    traced = torch.jit.trace(model, x)
    results["traced"] = [traced(x), traced(x)]
    results["frozen"] = torch.jit.freeze(torch.jit.trace(model, x))(x)
    scripted = torch.jit.script(model)
    results["scripted"] = [scripted(x), scripted(x)]
    optimized = ipex.optimize(model, sample_input=x)
    results["optimized"] = [optimized(x), optimized(x)]
    results["fx"] = torch.fx.symbolic_trace(model)(x)
    results["after"] = model(x)
results["facts"] = record.model_facts(model)
record.save(results)
