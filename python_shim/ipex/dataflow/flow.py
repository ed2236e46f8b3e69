"""What the traced graphs prove about each module: how often it is called, whether anything
else reads its attributes, and whether every place that can call it was traced."""
import warnings

from torch import nn

from .entry_points import exposed_modules
from .tracing import trace_regions

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


class DataFlow:
    """Facts over the traced regions of one model (see tracing.trace_regions).

    A module may be rewritten only when it is `known(m)`: every module it is registered in
    had its code traced (so no unseen code can call it), nothing reads its attributes
    directly (get_attr), it is called exactly once in all traced code, and no method other
    than forward of a module above it may call it (exposed_modules)."""

    def __init__(self, model):
        self.regions, self.untraced, inlined = trace_regions(model)
        self.whole_model_traced = not self.untraced
        self._calls, self._read = {}, set()
        for region in self.regions:
            for node in region.graph.nodes:
                if node.op == "call_module":
                    m = region.root.get_submodule(node.target)
                    self._calls[id(m)] = self._calls.get(id(m), 0) + 1
                elif node.op == "get_attr":
                    owner, _, _ = node.target.rpartition(".")
                    self._read.add(id(region.root.get_submodule(owner)))
        self._covered = _covered(model, inlined)
        self._exposed = exposed_modules(model)
        self._model_class = type(model).__name__  # its other methods are the user's API: named in a warning
        self._keep = []

    def adopt(self, old, new):
        """`new` replaced `old` in the model: it inherits what is known about it."""
        if id(old) in self._calls:
            self._calls[id(new)] = self._calls[id(old)]
        for facts in (self._read, self._covered):
            if id(old) in facts:
                facts.add(id(new))
        if id(old) in self._exposed:
            self._exposed[id(new)] = self._exposed[id(old)]
        self._keep.append(old)  # ids stay unique while old could be freed

    def calls(self, module):
        return self._calls.get(id(module), 0)

    def read_directly(self, module):
        """True when traced code reads the module's attributes (its weight, ...) itself."""
        return id(module) in self._read

    def covered(self, module):
        """True when only traced code can call the module (every module registering it was
        traced through)."""
        return id(module) in self._covered

    def known(self, module):
        return (id(module) in self._covered and id(module) not in self._read and self.calls(module) == 1
                and id(module) not in self._exposed)

    def warn_left_alone(self):
        """One warning naming what could not be traced, one naming the methods other than
        forward that keep layers from being rewritten (on the model's own class only)."""
        if self.untraced:
            names = ", ".join(self.untraced[:6]) + (", ..." if len(self.untraced) > 6 else "")
            warnings.warn(f"ipex.optimize: torch.fx could not trace the forward of {names}; layers called from "
                          "there directly are left as they are (their data flow is unknown)", stacklevel=5)
        methods = sorted({why for why in self._exposed.values() if why.startswith(self._model_class + ".")})
        if methods:
            names = ", ".join(methods[:6]) + (", ..." if len(methods) > 6 else "")
            warnings.warn(f"ipex.optimize: the layers that {names} may call other than through forward are left as "
                          "they are (rewriting them could change what those methods compute)", stacklevel=5)


def _covered(model, inlined):
    """ids of modules that only traced code can call: each module registering them had its
    forward traced through, or is a container (ModuleList, ...) that is itself covered (a
    container's entries are called by the code of the module holding it)."""
    parents = {}
    for path, m in model.named_modules(remove_duplicate=False):
        if path:
            parent = model.get_submodule(path.rpartition(".")[0])
            parents.setdefault(id(m), {})[id(parent)] = parent
    memo = {}

    def covered(mid):
        if mid not in memo:
            memo[mid] = False  # a cycle of containers proves nothing
            memo[mid] = mid in parents and all(
                pid in inlined or (isinstance(p, _CONTAINERS) and covered(pid)) for pid, p in parents[mid].items())
        return memo[mid]

    return {mid for mid in parents if covered(mid)}


def only_user(node):
    users = list(node.users)
    return users[0] if len(users) == 1 else None


def plain_call(node):
    """A node called with its input as the only argument (no kwargs)."""
    return len(node.args) == 1 and not node.kwargs


def common_owner(nodes):
    """The deepest module (relative qualified name) whose code encloses all nodes."""
    paths = [n.meta.get("owner", "").split(".") if n.meta.get("owner") else [] for n in nodes]
    common = []
    for parts in zip(*paths):
        if any(p != parts[0] for p in parts):
            break
        common.append(parts[0])
    return ".".join(common)
