"""Fixtures of the kernel tests; `ipex` comes from the build tree (see tests/conftest.py)."""
import pytest


@pytest.fixture(scope="session")
def kops():
    from ipex._kernels import ops
    return ops()
