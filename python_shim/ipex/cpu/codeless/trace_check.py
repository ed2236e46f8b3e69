"""When a trace of forward may stand in for forward: a trace records one path through the
Python code, the one the traced inputs took. Two traces of the original model, with two
inputs, that record the same operations, the same wiring and the same constants took the
same path; so a graph traced and checked for one input answers for another input only after
a trace with that input has come out the same. A trace that warns (a tensor turned into a
Python bool or int, a non-deterministic node, ...) proves nothing and is not used.
"""
import inspect
import warnings

import torch


class NotTraceable(Exception):
    """The call cannot be traced faithfully (its inputs or its code)."""


def positional_inputs(module, args, kwargs):
    """The call's inputs as the positional tuple torch.jit.trace takes: keyword arguments
    moved to their positions, trailing defaults left out. NotTraceable when an input is not a
    tensor (or a tuple/list of tensors), or a keyword has no position."""
    if kwargs:
        try:
            bound = inspect.signature(module.forward).bind(*args, **kwargs)
        except (TypeError, ValueError) as e:
            raise NotTraceable(f"its inputs do not bind to forward's parameters: {e}") from None
        if bound.kwargs:
            raise NotTraceable("keyword-only inputs cannot be traced")
        args = bound.args
    for a in args:
        if not _is_tensor_tree(a):
            raise NotTraceable(f"an input of type {type(a).__name__} cannot be traced")
    return tuple(args)


def _is_tensor_tree(value):
    if isinstance(value, torch.Tensor):
        return True
    if isinstance(value, (tuple, list)) and value:
        return all(_is_tensor_tree(v) for v in value)
    return False


def signature(value):
    """Hashable description of a call's inputs: containers, types, dtypes, shapes, and the
    values of everything else. None when some input is not hashable."""
    if isinstance(value, torch.Tensor):
        return ("T", value.dtype, tuple(value.shape), value.layout, value.requires_grad)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(signature(v) for v in value)
    if isinstance(value, dict):
        return ("dict",) + tuple((k, signature(v)) for k, v in value.items())
    try:
        hash(value)
    except TypeError:
        return ("unhashable", id(value))
    return ("V", type(value), value)


def _attribute(node, name):
    kind = node.kindOf(name)
    value = getattr(node, kind)(name)
    if kind == "t":
        return ("tensor", value.dtype, tuple(value.shape), value.contiguous().view(-1).tolist()
                if value.numel() <= 4096 else value)
    if kind == "ts":
        return tuple(("tensor", t.dtype, tuple(t.shape), t) for t in value)
    if kind in ("g", "gs", "ival"):
        return str(value)
    return value


def _same(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and \
            a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


class TracedPath:
    """The path forward took in one trace: operations, their wiring and their constants,
    without the shapes (which differ between inputs of different sizes)."""

    def __init__(self, graph):
        numbers = {}
        for v in graph.inputs():
            numbers[v.unique()] = len(numbers)
        self.nodes = self._walk(graph.nodes(), numbers)
        self.outputs = tuple(numbers.get(v.unique(), -1) for v in graph.outputs())

    def _walk(self, nodes, numbers):
        walked = []
        for node in nodes:
            if node.isNondeterministic():
                raise NotTraceable(f"forward draws random numbers ({node.kind()})")
            inputs = tuple(numbers.get(v.unique(), -1) for v in node.inputs())
            attrs = tuple((name, _attribute(node, name)) for name in sorted(node.attributeNames()))
            blocks = tuple(self._walk(b.nodes(), numbers) for b in node.blocks())
            for v in node.outputs():
                numbers[v.unique()] = len(numbers)
            walked.append((node.kind(), inputs, attrs, blocks))
        return walked

    def __eq__(self, other):
        return isinstance(other, TracedPath) and self.outputs == other.outputs and \
            _same(self.nodes, other.nodes)

    __hash__ = None


def trace_path(module, inputs):
    """The TracedPath of module(*inputs) (run under no_grad); NotTraceable when the tracer
    warns that the trace may not be faithful, or fails."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with torch.no_grad():
                traced = torch.jit.trace(module, inputs, check_trace=False, strict=False)
        except Exception as e:  # untraceable code: the model then runs eagerly
            raise NotTraceable(f"{type(e).__name__}: {e}".splitlines()[0]) from None
    for w in caught:
        if issubclass(w.category, torch.jit.TracerWarning):
            raise NotTraceable(f"the trace may not match forward: {w.message}".splitlines()[0])
    return TracedPath(traced.inlined_graph)

