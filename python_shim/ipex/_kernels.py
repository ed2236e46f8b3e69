"""Access to the oneDNN kernel operators (torch.ops.ipex.*) of libipex_runtime.so, which the
package's _C module loads."""
import torch

_loaded = False


def ops():
    """torch.ops.ipex, checking once that the kernels are there."""
    global _loaded
    if not _loaded:
        from . import _C  # noqa: F401  (loads libipex_runtime.so)
        try:
            torch.ops.ipex.conv_prepack
        except (RuntimeError, AttributeError) as e:
            raise RuntimeError("ipex: libipex_runtime.so was built without the oneDNN kernels") from e
        _loaded = True
    return torch.ops.ipex


def bf16_supported():
    """True when bfloat16 layers run natively (AVX512-BF16/AMX) and the check is not forced off."""
    return bool(ops().bf16_supported())


def set_bf16_disabled(disabled):
    """Test hook: make the kernels behave as on a CPU without native bfloat16."""
    ops().set_bf16_disabled(bool(disabled))
