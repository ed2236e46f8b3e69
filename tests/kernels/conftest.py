"""Kernel tests import `ipex` from the build tree (tests/conftest.py puts <build>/python on
sys.path). When that package is not there yet, fall back to the sources of python_shim/ with
the build's libipex_runtime.so, so the kernels can be tested on their own."""
import importlib.util
import os
import pathlib
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BUILD = pathlib.Path(os.environ.get("IPEX_BUILD_DIR", REPO / "build")).resolve()

if importlib.util.find_spec("ipex") is None or not (BUILD / "python" / "ipex" / "frontend.py").exists():
    sys.path.insert(0, str(REPO / "python_shim"))
    os.environ.setdefault("IPEX_RUNTIME_LIB", str(BUILD / "runtime" / "libipex_runtime.so"))


@pytest.fixture(scope="session")
def kops():
    from ipex._kernels import ops
    return ops()


@pytest.fixture
def threads2():
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
