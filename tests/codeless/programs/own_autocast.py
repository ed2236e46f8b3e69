"""A program that uses autocast itself for some calls: every answer has stock's dtype
(bfloat16 where stock autocast gives it, float32 elsewhere) and stock's values."""
import torch
from torch import nn

import record

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 4)).eval()
with torch.no_grad():
    model[1].running_mean.uniform_(-0.5, 0.5)
    model[1].running_var.uniform_(0.5, 1.5)
x = torch.randn(2, 3, 8, 8)
results = {}
with torch.no_grad():
    for i in range(3):
        with torch.cpu.amp.autocast():
            results[f"autocast {i}"] = model(x)
        results[f"plain {i}"] = model(x)
        with torch.cpu.amp.autocast(enabled=False):
            results[f"autocast off {i}"] = model(x)
results["facts"] = record.model_facts(model)
record.save(results)
