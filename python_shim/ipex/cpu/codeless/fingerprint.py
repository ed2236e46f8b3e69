"""What an optimized copy was built from, as a value that is cheap to take on every call.

A copy made by ipex.optimize answers for the model only while everything it was built from
is unchanged: the module tree, each module's training flag and plain attributes (flags that
steer forward's control flow), and every parameter, buffer and plain tensor attribute.
Tensors are compared by identity and version counter: `load_state_dict`,
`with torch.no_grad(): p.add_(1)` and an optimizer step change one of them. Edits through
`p.data` (a tensor with its own version counter) and `p.data = t` change neither, so
`.data` reads and writes of watched tensors are logged (DataAccessLog) and count as changes.
Not seen: edits through numpy views or storages, and state outside the modules (globals);
the copy shares storage with the model where it can (embeddings, norms, float32 linears on
plain-layout CPUs), so such an edit reaches those layers of the copy but not its packed ones.
"""
import itertools
import threading

import torch


def _module_state(m):
    """Identities of everything the module holds: its attribute values (training flag and
    user attributes included), children, parameters, buffers and hooks. Plain values count
    by identity too: setting one, even to an equal value, is seen as a change."""
    return (tuple(map(id, m.__dict__.values())), tuple(map(id, m._modules.values())),
            tuple(map(id, m._parameters.values())), tuple(map(id, m._buffers.values())),
            tuple(map(id, m._forward_hooks.values())), tuple(map(id, m._forward_pre_hooks.values())))


class ModelState:
    """The model's state when taken; `unchanged(model)` compares the model's state now.

    The module list and the tensors are found once; a change of the tree shows up as a
    change of some module's children. The model itself is not held (the caller passes it)."""

    def __init__(self, model):
        modules = list(model.modules())
        self._submodules = modules[1:]
        found = {}
        for m in modules:
            for t in itertools.chain(m._parameters.values(), m._buffers.values(),
                                     (v for v in m.__dict__.values() if isinstance(v, torch.Tensor))):
                if t is not None:
                    found[id(t)] = t
        self.tensors = list(found.values())
        self._value = self._take(model)

    def _take(self, model):
        return (tuple(map(_module_state, [model] + self._submodules)),
                tuple(t._version for t in self.tensors))

    def unchanged(self, model):
        return self._take(model) == self._value


class DataAccessLog:
    """Logs `.data` reads and writes of watched tensors (Tensor.data replaced by a property).

    `mark()` returns a point in the log; `touched(point, tensors)` says whether any of those
    tensors had `.data` read since then. Only watched tensor ids are logged, so the log stays
    as small as the set of watched tensors."""

    def __init__(self):
        self._lock = threading.Lock()
        self._watched = {}  # id(tensor) -> number of models watching it
        self._last = {}     # id(tensor) -> sequence number of its last `.data` read
        self._seq = 0
        self._base = None

    def install(self):
        base = torch._C._TensorBase.__dict__["data"]
        self._base = base
        log = self

        def get(tensor):
            key = id(tensor)
            if key in log._watched:
                log._seq += 1
                log._last[key] = log._seq
            return base.__get__(tensor)

        def set_(tensor, value):
            key = id(tensor)
            if key in log._watched:
                log._seq += 1
                log._last[key] = log._seq
            base.__set__(tensor, value)

        torch.Tensor.data = property(get, set_, doc=base.__doc__)

    def uninstall(self):
        if self._base is not None and isinstance(torch.Tensor.__dict__.get("data"), property):
            del torch.Tensor.data
        self._base = None

    def mark(self):
        return self._seq

    def touched(self, point, tensors):
        if self._seq == point:
            return False
        return any(self._last.get(id(t), 0) > point for t in tensors)

    def watch(self, tensors):
        with self._lock:
            for t in tensors:
                self._watched[id(t)] = self._watched.get(id(t), 0) + 1

    def unwatch(self, tensors):
        with self._lock:
            for t in tensors:
                key = id(t)
                left = self._watched.get(key, 0) - 1
                if left > 0:
                    self._watched[key] = left
                else:
                    self._watched.pop(key, None)
                    self._last.pop(key, None)
