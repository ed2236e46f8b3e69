"""A training loop with validation after every epoch; gradients through an eval-mode call."""
import torch
from torch import nn

import record

torch.manual_seed(0)
model = nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.1),
                      nn.Linear(32, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
data = torch.randn(64, 10)
target = torch.randint(0, 3, (64,))
held_out = torch.randn(16, 10)
results = {"validation": [], "loss": []}
for epoch in range(5):
    model.train()
    for i in range(0, 64, 16):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(data[i:i + 16]), target[i:i + 16])
        loss.backward()
        optimizer.step()
        results["loss"].append(loss.detach())
    model.eval()
    with torch.no_grad():
        results["validation"].append([model(held_out), model(held_out)])
# Input gradients through an eval-mode model (saliency): must stay differentiable.
x = held_out.clone().requires_grad_(True)
model(x).sum().backward()
results["input grad"] = x.grad
results["facts"] = record.model_facts(model)
record.save(results)
