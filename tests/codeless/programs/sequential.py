"""An nn.Sequential CNN: answers, len and state_dict unchanged, strict load works."""
import torch
from torch import nn

import record

torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
with torch.no_grad():
    for m in model:
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
model.eval()
x = torch.randn(4, 3, 16, 16)
results = {"calls": []}
with torch.no_grad():
    for _ in range(3):
        results["calls"].append(model(x))
    results["batch 1"] = model(x[:1])
results["facts"] = record.model_facts(model)
model.load_state_dict(model.state_dict(), strict=True)
with torch.no_grad():
    results["after load"] = model(x)
results["len"] = len(model)
results["manual"] = x
with torch.no_grad():  # running the layers by hand gives the same as the model
    for layer in model:
        results["manual"] = layer(results["manual"])
record.save(results)
