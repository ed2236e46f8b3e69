"""An eval-mode model called with gradients enabled (no torch.no_grad): its answers carry
autograd history as in stock, and backward() gives stock's gradients: a saliency-style
gradient with respect to the weights, a tuple-and-dict output, and fine-tuning steps of a
model kept in eval mode (frozen batch norms)."""
import torch
from torch import nn

import record


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.cls, self.box = nn.Linear(8, 4), nn.Linear(8, 2)

    def forward(self, x):
        f = self.body(x)
        return self.cls(f), {"box": self.box(f), "steps": 3}


def grads(model):
    return {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


torch.manual_seed(0)
model = Heads().eval()
with torch.no_grad():
    model.body[1].running_mean.uniform_(-0.5, 0.5)
    model.body[1].running_var.uniform_(0.5, 1.5)
x = torch.randn(2, 3, 8, 8)
results = {}
for call in range(3):
    cls, extra = model(x)
    results[f"call {call} answer"] = (cls.detach(), extra["box"].detach(), extra["steps"])
    results[f"call {call} records"] = torch.tensor([cls.requires_grad, extra["box"].requires_grad,
                                                    cls.grad_fn is not None])
    (cls.square().sum() + extra["box"].sum()).backward()
    results[f"call {call} grads"] = grads(model)
    model.zero_grad()

# Fine-tuning in eval mode: the weights change each step.
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for step in range(4):
    optimizer.zero_grad()
    loss = model(x)[0].logsumexp(1).mean()
    loss.backward()
    optimizer.step()
    results[f"step {step} loss"] = loss.detach()
with torch.no_grad():
    results["after fine-tuning"] = model(x)[0]
results["facts"] = record.model_facts(model)
record.save(results)
