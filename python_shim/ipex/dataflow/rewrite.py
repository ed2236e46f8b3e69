"""Replacing a child module by a torch.fx.GraphModule of its rewritten code.

The GraphModule is an ordinary module: it holds the child's own submodules, parameters and
buffers under their names and in their order (FX would keep only those the graph reads),
so state_dict() keys and named_modules() stay those of the original child."""
import copy

from torch import fx, nn

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


class RewrittenModule(fx.GraphModule):
    """A GraphModule that keeps every registered module, parameter and buffer through
    deepcopy and pickling (fx.GraphModule's own rebuild keeps only what the graph reads, and
    its deepcopy ignores the memo, so links into the rest of the model would be duplicated)."""

    def __deepcopy__(self, memo):
        state = {k: v for k, v in self.__dict__.items() if k != "_graph"}
        state = copy.deepcopy(state, memo)
        state["_graph"] = copy.deepcopy(self.graph)
        return _rebuild(state)

    def __reduce__(self):
        state = {k: v for k, v in self.__dict__.items() if k not in ("_graph", "_code")}
        graph = copy.deepcopy(self.graph)  # without the link back to this module
        return _rebuild, (dict(state, _graph=graph),)


def _rebuild(state):
    holder = nn.Module()
    holder.__dict__.update(state)
    gm = RewrittenModule(holder, state["_graph"], class_name=state.get("_class_name", "RewrittenModule"))
    for key, value in state.items():
        if key not in ("_graph", "_code"):
            gm.__dict__[key] = value
    gm.recompile()
    return gm


def graph_module_like(original, graph, constants):
    """A GraphModule running `graph` that keeps exactly original's registered state."""
    graph.lint()
    original.__dict__.update(constants)
    try:
        gm = RewrittenModule(original, graph, class_name=type(original).__name__)
    finally:
        for name in constants:
            original.__dict__.pop(name, None)
    gm._class_name = type(original).__name__
    extra_buffers = {k: v for k, v in gm._buffers.items() if k not in original._buffers}
    gm._parameters = dict(original._parameters)
    gm._buffers = dict(original._buffers)
    gm._non_persistent_buffers_set = set(original._non_persistent_buffers_set)
    gm._modules = dict(original._modules)
    for name, value in extra_buffers.items():  # tensor constants FX took from plain attributes
        if "." not in name:
            gm.register_buffer(name, value, persistent=False)
    gm.training = original.training
    gm.recompile()
    return gm


def replace_child(model, qualname, new):
    parent_name, _, name = qualname.rpartition(".")
    parent = model.get_submodule(parent_name)
    parent._modules[name] = new
