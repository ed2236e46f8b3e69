"""ipex: CPU runtime (pools, pinning, tasks, multi-stream modules) and oneDNN kernels for
PyTorch inference. `intel_extension_for_pytorch` is an alias of this package."""
import torch  # noqa: F401  (libtorch_python must be loaded before _C)

# Loads libipex_runtime.so: the runtime, and with it the kernels' torch.ops.ipex operators.
from . import _C  # noqa: F401
from ._C import __version__  # noqa: F401
from . import cpu  # noqa: F401
from .cpu import runtime  # noqa: F401

# Kernels: the frontend (ipex.optimize) is imported below this line.
from .frontend import optimize  # noqa: F401,E402
from . import benchmark  # noqa: F401,E402  (reporting to ipexrun --benchmark-report)
