"""Access to the oneDNN kernel operators (torch.ops.ipex.*) of libipex_runtime.so.

The package's _C module loads the library; when it is not importable (e.g. a scratch build
without the Python package), IPEX_RUNTIME_LIB or the build tree next to the package is tried.
"""
import os
import pathlib

import torch

_loaded = False


def _has_ops():
    try:
        torch.ops.ipex.conv_prepack
        return True
    except (RuntimeError, AttributeError):
        return False


def _candidates():
    env = os.environ.get("IPEX_RUNTIME_LIB")
    if env:
        yield pathlib.Path(env)
    here = pathlib.Path(__file__).resolve().parent
    yield here / "lib" / "libipex_runtime.so"
    yield here.parent.parent / "runtime" / "libipex_runtime.so"  # <build>/python/ipex -> <build>/runtime


def ops():
    """torch.ops.ipex, loading the runtime library on first use."""
    global _loaded
    if _loaded:
        return torch.ops.ipex
    if not _has_ops():
        try:
            from . import _C  # noqa: F401  (the runtime package loads libipex_runtime.so)
        except ImportError:
            pass
    if not _has_ops():
        for lib in _candidates():
            if lib.is_file():
                torch.ops.load_library(str(lib))
                break
    if not _has_ops():
        raise RuntimeError("ipex: the oneDNN kernels are not available: libipex_runtime.so was not found "
                           "(build the tree or set IPEX_RUNTIME_LIB)")
    _loaded = True
    return torch.ops.ipex


def bf16_supported():
    """True when bfloat16 layers run natively (AVX512-BF16/AMX) and the check is not forced off."""
    return bool(ops().bf16_supported())


def set_bf16_disabled(disabled):
    """Test hook: make the kernels behave as on a CPU without native bfloat16."""
    ops().set_bf16_disabled(bool(disabled))
