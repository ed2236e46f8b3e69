"""The runtime suites run against the build tree's package (tests/conftest.py puts it on
sys.path); they need two CPUs for most checks."""
import os
import sys

import pytest

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


@pytest.fixture
def threads2():
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
