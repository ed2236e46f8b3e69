"""torch.fx tracing of a model's forward, as far as it can be traced, for the rewrite passes.

The whole model is traced when FX can; otherwise each child subtree that FX can trace is (and
so on down), and what could not be traced is left alone. Standard torch.nn layers, the ipex
layers and modules with hooks stay opaque call_module nodes; everything else is inlined, each
node remembering in `meta["owner"]` the qualified name of the module whose code created it.
"""
import warnings

import torch
from torch import fx, nn

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


def _is_layer(module):
    """Opaque in the graph: torch.nn's own layers, ipex's, and anything with hooks (the
    hooks would be lost if its code were inlined and rewritten)."""
    if isinstance(module, fx.GraphModule):
        return has_hooks(module)
    name = type(module).__module__
    builtin = (name.startswith("torch.nn") or name.startswith("torch.ao.nn") or name.startswith("ipex.")
               or name.startswith("intel_extension_for_pytorch."))
    return (builtin and not isinstance(module, _CONTAINERS)) or has_hooks(module)


def has_hooks(module):
    return bool(module._forward_hooks or module._forward_pre_hooks or getattr(module, "_backward_hooks", None))


class ScopedTracer(fx.Tracer):
    """fx.Tracer recording, per node, the module whose code created it, and which modules'
    code it went through."""

    def __init__(self):
        super().__init__()
        self.scope = [""]
        self.inlined = []  # modules whose forward was traced through, in call order

    def is_leaf_module(self, m, module_qualified_name):
        return _is_layer(m)

    def call_module(self, m, forward, args, kwargs):
        qualname = self.path_of_module(m)
        if self.is_leaf_module(m, qualname):
            return self.create_proxy("call_module", qualname, args, kwargs)
        self.inlined.append(m)
        self.scope.append(qualname)
        try:
            return forward(*args, **kwargs)
        finally:
            self.scope.pop()

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["owner"] = self.scope[-1]
        return node


def trace(module):
    """(graph, modules traced through, tensor constants) of module.forward; raises whatever
    FX raises. The tensor constants FX attaches to the module while tracing (values the
    graph reads with get_attr) are taken off it again and returned by name."""
    before = set(module.__dict__)
    tracer = ScopedTracer()
    constants = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tracer.trace(module)
    finally:
        for name in set(module.__dict__) - before:
            if name.startswith("_tensor_constant"):
                constants[name] = module.__dict__.pop(name)
    return graph, [module] + tracer.inlined, constants


class Region:
    """One traced subtree: `prefix` is its root's qualified name in the whole model ("" for
    the model itself); node targets and owners are relative to that root."""

    def __init__(self, prefix, root, graph):
        self.prefix, self.root, self.graph = prefix, root, graph

    def qualname(self, local):
        if not self.prefix:
            return local
        return f"{self.prefix}.{local}" if local else self.prefix


def trace_regions(model):
    """([Region], [qualified names FX could not trace]) covering as much of model as FX can."""
    regions, untraced, inlined = [], [], set()

    def visit(prefix, module):
        if _is_layer(module):
            return
        try:
            graph, through, _ = trace(module)
        except Exception:  # noqa: BLE001 - any failure means: not traceable as a whole
            untraced.append(prefix or type(module).__name__)
            for name, child in module.named_children():
                visit(f"{prefix}.{name}" if prefix else name, child)
            return
        regions.append(Region(prefix, module, graph))
        inlined.update(id(m) for m in through)

    visit("", model)
    return regions, untraced, inlined
