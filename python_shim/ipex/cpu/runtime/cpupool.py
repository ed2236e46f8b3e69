"""CPUPool and pin."""
import functools
import threading
import warnings

from ... import _C


def is_runtime_ext_enabled():
    """True: the runtime works with whatever OpenMP runtime torch uses (libgomp included)."""
    return bool(_C.is_runtime_ext_enabled())


class CPUPool:
    """An ordered set of logical CPUs this process may use.

    core_ids: CPU ids (list, tuple or range), kept in the given order, minus those the process
    may not use. node_id: the CPUs of that NUMA node (as hwloc numbers nodes). Neither: every
    CPU the process may use, evaluated when the pool is made. Raises ValueError naming the
    allowed CPUs when nothing is left.
    """

    def __init__(self, core_ids=None, node_id=None):
        if core_ids is not None:
            if node_id is not None:
                warnings.warn("CPUPool: both core_ids and node_id given; core_ids is used", stacklevel=2)
            if isinstance(core_ids, range):
                core_ids = list(core_ids)
            if not isinstance(core_ids, (list, tuple)) or not all(
                    isinstance(c, int) and not isinstance(c, bool) for c in core_ids):
                raise TypeError(f"CPUPool: core_ids must be a list of CPU ids (int), not {core_ids!r}")
            self._pool = _C.CPUPool(list(core_ids))
        elif node_id is not None:
            if not isinstance(node_id, int) or isinstance(node_id, bool):
                raise TypeError(f"CPUPool: node_id must be an int, not {node_id!r}")
            self._pool = _C.CPUPool.numa_node(node_id)
        else:
            self._pool = _C.CPUPool.all()

    @classmethod
    def _wrap(cls, pool):
        self = cls.__new__(cls)
        self._pool = pool
        return self

    @property
    def core_ids(self):
        return list(self._pool.cpus)

    def split(self, parts):
        """`parts` consecutive sub-pools; the first len % parts get one CPU more."""
        return [CPUPool._wrap(p) for p in self._pool.split(parts)]

    def __len__(self):
        return len(self._pool)

    def __eq__(self, other):
        return isinstance(other, CPUPool) and self._pool == other._pool

    def __hash__(self):
        return hash(tuple(self._pool.cpus))

    def __repr__(self):
        return f"CPUPool(core_ids={self.core_ids})"


def get_core_list_of_node_id(node_id):
    """CPUs of NUMA node `node_id` that this process may use."""
    return CPUPool(node_id=node_id).core_ids


def current_cpu_pool():
    """Pool of the innermost pin scope open on this thread, or None."""
    p = _C.current_cpu_pool()
    return None if p is None else CPUPool._wrap(p)


class pin:
    """Runs the calling thread's OpenMP team (torch's intra-op threads) on `cpu_pool`: one
    thread per CPU, team size = len(cpu_pool). Everything comes back exactly on exit. Nestable;
    usable as a context manager and as a decorator, from several threads."""

    def __init__(self, cpu_pool):
        if not isinstance(cpu_pool, CPUPool):
            raise TypeError(f"pin: cpu_pool must be an ipex.cpu.runtime.CPUPool, not {type(cpu_pool).__name__}")
        self.cpu_pool = cpu_pool
        self._local = threading.local()

    def __enter__(self):
        scope = _C.Pin(self.cpu_pool._pool)
        scope.enter()
        stack = self._local.__dict__.setdefault("stack", [])
        stack.append(scope)
        return self

    def __exit__(self, *exc):
        self._local.stack.pop().exit()
        return False

    def __call__(self, func):
        @functools.wraps(func)
        def pinned(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return pinned
