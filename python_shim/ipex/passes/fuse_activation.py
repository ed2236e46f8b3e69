"""Pass: a packed layer whose output (after a folded batch norm) only an activation uses runs
that activation as a oneDNN post-op: nn.ReLU, F.relu, torch.relu, x.relu(), GELU, SiLU, ...
(whatever ipex.nn.packed.post_op_of and dataflow.patterns.activation_of know).

An activation module called only there becomes nn.Identity; anything else (a functional
call, a module used in several places like torchvision's `self.relu`) needs the enclosing
module's code changed: that is recorded for the rewrite_code pass."""
from torch import nn

from ..dataflow import patterns
from ..dataflow.flow import plain_call
from ..nn.packed import PackedConv, PackedLinear
from .context import CodeEdit, replace_everywhere
from .rewrite_code import owner_for, scopes


def applies(ctx):
    return ctx.opts.weights_prepack


def run(model, ctx):
    flow = ctx.flow(model)
    for region in flow.regions:
        for node in list(region.graph.nodes):
            layer = fusable_layer(node, region, flow, ctx)
            if layer is None:
                continue
            found = patterns.activation_chain(node, region)
            if found is None:
                continue
            act_node, post_op, skipped = found
            if act_node.op == "call_module":
                act = region.root.get_submodule(act_node.target)
                if flow.known(act) and not list(act.parameters()) and not list(act.buffers()):
                    replace_everywhere(model, act, nn.Identity())
                    layer.fuse_activation(*post_op)
                    continue
            owner = owner_for(model, region, [node, *skipped, act_node])
            if owner is not None:
                ctx.edits.append(CodeEdit(owner, region.qualname(node.target), "activation", post_op,
                                          scopes(region, [node, *skipped, act_node])))
                ctx.claimed.add(id(layer))
    return model


def fusable_layer(node, region, flow, ctx):
    """The packed layer node calls, when it may take a post-op: called once with one input,
    reached from nowhere else, no post-op yet."""
    if node.op != "call_module" or not plain_call(node):
        return None
    layer = region.root.get_submodule(node.target)
    if not isinstance(layer, (PackedConv, PackedLinear)) or layer.post_op[0] != "none":
        return None
    if id(layer) in ctx.claimed or not flow.known(layer):
        return None
    return layer
