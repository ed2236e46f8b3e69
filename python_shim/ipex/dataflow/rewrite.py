"""Rewriting a module's forward in place, keeping the module itself.

The module stays the same object with the same registered modules, parameters and buffers
(so state_dict() keys, named_modules(), hooks and every reference to it are unchanged); only
its class becomes a subclass of its own class whose forward is the rewritten graph's code.
isinstance() checks and the class's other methods (a custom `inference()` calling forward)
keep working, and no instance attribute holds a function. The subclass pickles and deep-
copies as (original class, graph): no generated class has to be importable."""
from torch.fx.graph_module import _forward_from_src

from ..nn.folding import FoldedBatchNorm
from .tracing import trace


def traced(module, inline):
    """(graph of the module's forward with module-local targets, its tensor constants); of
    its submodules only those named in `inline` (relative names) have their code inlined,
    the others stay calls."""
    graph, _, constants = trace(module, inline)
    return graph, constants


def drop_pass_throughs(graph, root):
    """Removes calls of folded batch norms (identity stand-ins) from the graph."""
    for node in list(graph.nodes):
        if (node.op == "call_module" and len(node.args) == 1 and not node.kwargs
                and isinstance(root.get_submodule(node.target), FoldedBatchNorm)):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)


class RewrittenForward:
    """Base of the classes rewrite_forward makes (after the module's own class in the MRO)."""

    _ipex_original_class = None
    _ipex_graph = None

    def __reduce_ex__(self, protocol):
        state = self.__getstate__() if hasattr(type(self), "__getstate__") else self.__dict__
        return _with_graph, (self._ipex_original_class, self._ipex_graph), state


def _subclass(original_class, graph):
    code = graph.python_code(root_module="self")
    namespace = {
        "forward": _forward_from_src(code.src, code.globals),
        "_ipex_original_class": original_class,
        "_ipex_graph": graph,
        "__module__": original_class.__module__,
        "__qualname__": original_class.__qualname__,
        "__doc__": original_class.__doc__,
    }
    return type(original_class.__name__, (original_class, RewrittenForward), namespace)


def _with_graph(original_class, graph):
    """An empty instance of original_class running graph (pickle and deepcopy then restore
    its state)."""
    cls = _subclass(original_class, graph)
    return cls.__new__(cls)


def original_class(module):
    return module._ipex_original_class if isinstance(module, RewrittenForward) else type(module)


def rewrite_forward(module, graph, constants):
    """Makes module run `graph` (module-local targets) as its forward. Tensor constants FX
    took from plain attributes or literals become plain attributes again."""
    graph.lint()
    module.__dict__.update(constants)
    module.__class__ = _subclass(original_class(module), graph)


def rewritten_code(module):
    """The Python source of a rewritten module's forward (None if it was not rewritten)."""
    if not isinstance(module, RewrittenForward):
        return None
    return module._ipex_graph.python_code(root_module="self").src

