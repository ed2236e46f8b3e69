"""Task: a callable on a pinned worker thread of its own."""
from ... import _C
from .cpupool import CPUPool


class Task:
    """Runs `module` (a TorchScript module, an nn.Module or any callable) on a dedicated
    worker thread whose OpenMP team is pinned to `cpu_pool`.

    task(*args, **kwargs) queues a call and returns a future; future.get() waits (without
    holding the GIL) and returns the result or raises the call's exception. Calls run in
    submission order; many may be outstanding. Grad mode, inference mode and autocast of the
    submitting thread apply to the call. TorchScript modules run without the GIL; Python
    callables take it, and torch operators release it while they compute.
    """

    def __init__(self, module, cpu_pool):
        if not isinstance(cpu_pool, CPUPool):
            raise TypeError(f"Task: cpu_pool must be an ipex.cpu.runtime.CPUPool, not {type(cpu_pool).__name__}")
        if not callable(module):
            raise TypeError(f"Task: module must be callable, not {type(module).__name__}")
        self.module = module
        self.cpu_pool = cpu_pool
        self._task = _C.Task(module, cpu_pool._pool)

    def __call__(self, *args, **kwargs):
        return self._task(*args, **kwargs)

    def run_sync(self, *args, **kwargs):
        return self._task(*args, **kwargs).get()

    def shutdown(self, cancel=False):
        """Stops the worker: runs the queued calls first, or with cancel=True fails their
        futures with RuntimeError. Later calls raise RuntimeError."""
        self._task.shutdown(cancel)
