"""torch.fx tracing of a model's forward, as far as it can be traced, for the rewrite passes.

The whole model is traced when FX can; otherwise each child subtree that FX can trace is (and
so on down), and what could not be traced is left alone. Standard torch.nn layers, the ipex
layers and modules with hooks stay opaque call_module nodes; everything else is inlined, each
node remembering in `meta["owner"]` the qualified name of the module whose code created it.
"""
import dis
import inspect
import operator
import warnings

import torch
from torch import fx, nn

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


_HARMLESS = {"__module__", "__qualname__", "__doc__", "__init__", "__annotations__", "__dict__", "__weakref__",
             "__constants__", "extra_repr"}


def _is_torch_class(cls):
    return cls.__module__.startswith("torch.nn") or cls.__module__.startswith("torch.ao.nn")


def stock_type(module):
    """The torch.nn class that module behaves as: its own class, or the torch.nn base of a
    subclass that changes nothing but construction (e.g. torchvision's Conv3DSimple)."""
    for cls in type(module).__mro__:
        if _is_torch_class(cls):
            return cls
        for name, value in vars(cls).items():
            if name not in _HARMLESS and inspect.isfunction(value):
                return None
    return None


def _is_layer(module):
    """Opaque in the graph: torch.nn's own layers (and subclasses that only construct them),
    ipex's, and anything with hooks (the hooks would be lost if its code were inlined and
    rewritten)."""
    if has_hooks(module) or isinstance(module, torch.jit.ScriptModule):
        return True
    if isinstance(module, fx.GraphModule):
        return False
    name = type(module).__module__
    if name.startswith("ipex.") or name.startswith("intel_extension_for_pytorch."):
        return True
    base = stock_type(module)
    return base is not None and not issubclass(base, _CONTAINERS)


def has_hooks(module):
    return bool(module._forward_hooks or module._forward_pre_hooks or getattr(module, "_backward_hooks", None))


def _unpack(proxy):
    """Tuple unpacking (`a, b = proxy`) that works on Python 3.11, where torch 1.13's lookup of
    the unpacking instruction by f_lasti // 2 misses (inline caches)."""
    frame = inspect.currentframe().f_back.f_back
    for inst in dis.get_instructions(frame.f_code):
        if inst.offset == frame.f_lasti:
            if inst.opname == "UNPACK_SEQUENCE":
                return (proxy[i] for i in range(inst.argval))
            break
    return proxy.tracer.iter(proxy)


class _Proxy(fx.Proxy):
    def __iter__(self):
        return _unpack(self)

    def __getattr__(self, k):
        return _Attribute(self, k)


class _Attribute(fx.proxy.Attribute):
    def __iter__(self):
        return _unpack(self)


def _in_place(op):
    def method(self, other):
        return self.tracer.create_proxy("call_function", op, (self, other), {})
    return method


# `out += y` on a proxy: torch 1.13's Proxy falls back to `out + y`, which drops the in-place
# write that other names of `out` see; recorded as operator.iadd (FX prints it as `out += y`).
for _name in ("iadd", "isub", "imul", "itruediv", "ifloordiv", "imod", "ipow", "imatmul", "iand", "ior", "ixor",
              "ilshift", "irshift"):
    for _cls in (_Proxy, _Attribute):
        setattr(_cls, f"__{_name}__", _in_place(getattr(operator, _name)))


class ScopedTracer(fx.Tracer):
    """fx.Tracer recording, per node, the module whose code created it, and which modules'
    code it went through."""

    def __init__(self, inline=None):
        super().__init__()
        self.scope = [""]
        self.inlined = []  # modules whose forward was traced through, in call order
        self.inline = inline  # None: every module but the layers; else these qualified names only

    def is_leaf_module(self, m, module_qualified_name):
        if self.inline is not None and module_qualified_name not in self.inline:
            return True
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

    def proxy(self, node):
        return _Proxy(node, self)

    def create_node(self, *args, **kwargs):
        node = super().create_node(*args, **kwargs)
        node.meta["owner"] = self.scope[-1]
        return node


def trace(module, inline=None):
    """(graph, modules traced through, tensor constants) of module.forward; raises whatever
    FX raises. Tracing runs the module's Python code on proxies, which may store them on
    modules (caches set up on a first call): every module's attributes are put back as they
    were. The tensor constants FX attaches for get_attr are returned by name."""
    saved = [(m, dict(m.__dict__), dict(m._parameters), dict(m._buffers), dict(m._modules))
             for m in module.modules()]
    tracer = ScopedTracer(None if inline is None else set(inline) | {""})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = tracer.trace(module)
        constants = {k: v for k, v in module.__dict__.items() if k.startswith("_tensor_constant")
                     and k not in saved[0][1]}
    finally:
        for m, attrs, params, buffers, children in saved:
            m.__dict__.clear()
            m.__dict__.update(attrs)
            for table, content in ((m._parameters, params), (m._buffers, buffers), (m._modules, children)):
                table.clear()
                table.update(content)
    return graph, [module] + tracer.inlined, constants


def editable_modules(model):
    """model's modules outside TorchScript modules (whose insides must not be replaced)."""
    if isinstance(model, torch.jit.ScriptModule):
        return
    yield model
    for child in model.children():
        yield from editable_modules(child)


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
