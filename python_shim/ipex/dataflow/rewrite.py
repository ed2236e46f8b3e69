"""Replacing a child module by a torch.fx.GraphModule of its rewritten code.

The GraphModule is an ordinary module: it holds the child's own submodules, parameters and
buffers under their names and in their order (FX would keep only those the graph reads),
so state_dict() keys and named_modules() stay those of the original child."""
import torch
from torch import fx

from ..nn.folding import FoldedBatchNorm
from .tracing import trace


def traced(module):
    """(graph of the module's forward with module-local targets, its tensor constants)."""
    graph, _, constants = trace(module)
    return graph, constants


def drop_pass_throughs(graph, root):
    """Removes calls of folded batch norms (identity stand-ins) from the graph."""
    for node in list(graph.nodes):
        if (node.op == "call_module" and len(node.args) == 1 and not node.kwargs
                and isinstance(root.get_submodule(node.target), FoldedBatchNorm)):
            node.replace_all_uses_with(node.args[0])
            graph.erase_node(node)


def graph_module_like(original, graph, constants):
    """A GraphModule running `graph` that keeps exactly original's registered state."""
    graph.lint()
    original.__dict__.update(constants)
    try:
        gm = fx.GraphModule(original, graph, class_name=type(original).__name__)
    finally:
        for name in constants:
            original.__dict__.pop(name, None)
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
