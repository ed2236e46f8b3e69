"""Node patterns of the rewrite passes: pass-through nodes, activations, residual adds."""
import operator

import torch
from torch import nn
import torch.nn.functional as F

from ..nn.folding import FoldedBatchNorm
from ..nn.packed import post_op_of
from .flow import only_user

# functional activation -> (post-op name, [(argument name, default)] read as its scalars)
_FUNCTIONS = {
    F.relu: ("relu", []), torch.relu: ("relu", []), F.relu_: ("relu", []), torch.relu_: ("relu", []),
    F.silu: ("silu", []), torch.sigmoid: ("sigmoid", []), F.sigmoid: ("sigmoid", []), torch.tanh: ("tanh", []),
    F.tanh: ("tanh", []), F.mish: ("mish", []), F.hardswish: ("hardswish", []),
    F.hardsigmoid: ("hardsigmoid", []), F.leaky_relu: ("leaky_relu", [("negative_slope", 0.01)]),
    F.elu: ("elu", [("alpha", 1.0)]), F.hardtanh: ("clamp", [("min_val", -1.0), ("max_val", 1.0)]),
    F.relu6: ("relu6", []), F.gelu: ("gelu", []),
}
# Tensor methods (x.relu()) with no scalar arguments.
_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
            "tanh_": "tanh"}
_IGNORED_KWARGS = {"inplace"}


def _scalars(node, params):
    """The activation's scalar arguments in order, or None when an argument is not a plain
    number (a traced value) or is unknown."""
    args = list(node.args[1:])
    kwargs = {k: v for k, v in node.kwargs.items() if k not in _IGNORED_KWARGS}
    values = []
    for i, (name, default) in enumerate(params):
        if i < len(args):
            value = args[i]
        else:
            value = kwargs.pop(name, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        values.append(float(value))
    extra = args[len(params):]
    if kwargs or any(not isinstance(a, bool) for a in extra) or len(extra) > 1:
        return None  # only a positional `inplace` may follow
    return values


def activation_of(node, region):
    """(post-op name, args) when node applies a fusable activation to node.args[0] alone."""
    if not node.args or not isinstance(node.args[0], torch.fx.Node):
        return None
    if node.op == "call_module" and len(node.args) == 1 and not node.kwargs:
        return post_op_of(region.root.get_submodule(node.target))
    if node.op == "call_method" and node.target in _METHODS and len(node.args) == 1 and not node.kwargs:
        return _METHODS[node.target], []
    if node.op != "call_function" or node.target not in _FUNCTIONS:
        return None
    name, params = _FUNCTIONS[node.target]
    if node.target is F.gelu:
        approximate = node.kwargs.get("approximate", node.args[1] if len(node.args) > 1 else "none")
        if len(node.args) > 2 or set(node.kwargs) - {"approximate"} or approximate not in ("none", "tanh"):
            return None
        return ("gelu_erf" if approximate == "none" else "gelu_tanh"), []
    scalars = _scalars(node, params)
    if scalars is None:
        return None
    if name == "relu6":
        return "clamp", [0.0, 6.0]
    return name, scalars


def is_pass_through(node, region):
    """A node returning its only input unchanged (Identity, a folded batch norm, dropout in
    eval mode)."""
    if node.op == "call_module" and len(node.args) == 1 and not node.kwargs:
        return isinstance(region.root.get_submodule(node.target), (nn.Identity, FoldedBatchNorm))
    if node.op == "call_function" and node.target is F.dropout:
        return node.kwargs.get("training", node.args[2] if len(node.args) > 2 else True) is False
    return False


def follow(node, region):
    """The chain of pass-through nodes after node, each the only user of the one before:
    returns (last node of the chain, [pass-through nodes])."""
    skipped = []
    while True:
        user = only_user(node)
        if user is None or not is_pass_through(user, region) or user.args[0] is not node:
            return node, skipped
        skipped.append(user)
        node = user


# Nodes that produce Python numbers, not tensors: never a residual operand.
_SCALAR_METHODS = {"size", "dim", "numel", "item", "tolist", "element_size", "nelement", "ndimension"}


def _tensor_like(node, depth=0):
    """False for values that are (or may be) Python numbers: sizes and arithmetic on them."""
    if not isinstance(node, torch.fx.Node) or depth > 32:
        return False
    if node.op == "call_method":
        return node.target not in _SCALAR_METHODS and _tensor_like(node.args[0], depth + 1)
    if node.op == "call_function":
        if node.target in (len, getattr):
            return False
        if getattr(node.target, "__module__", None) in ("_operator", "operator"):
            return any(_tensor_like(a, depth + 1) for a in node.args if isinstance(a, torch.fx.Node))
    return True


def residual_add(node, value):
    """The other operand when node computes value + other (alpha 1; in place only into
    value itself), else None."""
    if node.op == "call_function" and node.target in (operator.add, torch.add, operator.iadd):
        kwargs = dict(node.kwargs)
        if kwargs.pop("alpha", 1) != 1 or kwargs or len(node.args) != 2:
            return None
        a, b = node.args
    elif node.op == "call_method" and node.target in ("add", "add_"):
        kwargs = dict(node.kwargs)
        if kwargs.pop("alpha", 1) != 1 or kwargs or len(node.args) != 2:
            return None
        a, b = node.args
        if a is not value:
            return None
    else:
        return None
    in_place = node.target in (operator.iadd, "add_")
    if a is value and _tensor_like(b) and b is not value:
        return b
    if b is value and not in_place and _tensor_like(a):
        return a
    return None


def activation_chain(layer_node, region):
    """([pass-throughs..., activation node], post-op) when the layer's output goes, through
    pass-throughs only, to one fusable activation and nowhere else."""
    last, skipped = follow(layer_node, region)
    act = only_user(last)
    if act is None or act.args[0] is not last:
        return None
    post_op = activation_of(act, region)
    if post_op is None:
        return None
    return [*skipped, act], post_op


def residual_chain(layer_node, region):
    """([pass-throughs..., add node, optional activation node], post-op) when the layer's
    output goes only into `+ other`, the sum then optionally only into an activation."""
    last, skipped = follow(layer_node, region)
    add = only_user(last)
    if add is None or residual_add(add, last) is None:
        return None
    nodes, names, args = [*skipped, add], ["badd"], []
    act = only_user(add)
    post_op = activation_of(act, region) if act is not None and act.args[0] is add else None
    if post_op is not None:
        nodes.append(act)
        names.append(post_op[0])
        args.extend(post_op[1])
    return nodes, ("+".join(names), args)
