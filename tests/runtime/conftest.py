"""The runtime suites run against the build tree's package (tests/conftest.py puts it on
sys.path); they need two CPUs for most checks."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.dirname(__file__))


@pytest.fixture(scope="session")
def rt():
    from ipex.cpu import runtime
    return runtime


@pytest.fixture
def two_cpus(rt):
    pool = rt.CPUPool()
    if len(pool) < 2:
        pytest.skip("needs two CPUs")
    return pool.core_ids[:2]


class ConvSoftmax(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return torch.softmax(self.conv(x), dim=1)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ConvSoftmax().eval()


@pytest.fixture(params=["script", "module", "function"])
def model_as(request, model):
    """The model as the runtime may be given it: TorchScript, nn.Module or a plain callable."""
    return {"script": lambda: torch.jit.script(model), "module": lambda: model,
            "function": lambda: (lambda x: model(x))}[request.param]()


@pytest.fixture
def threads2():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
