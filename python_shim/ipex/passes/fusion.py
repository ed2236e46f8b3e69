"""The walk both fusion passes share: every packed layer the traced data flow shows may take
a post-op is matched against a pattern of the nodes after it; a match is either applied on
the spot (when the pass can, without code changes) or recorded as a CodeEdit for the module
whose code holds the nodes (applied by the rewrite_code pass)."""
from ..dataflow.flow import plain_call
from ..nn.packed import PackedConv, PackedLinear
from .context import CodeEdit
from .rewrite_code import owner_for, scopes


def record_fusions(model, ctx, kind, pattern, apply_directly=None):
    """pattern(layer_node, region) -> ([nodes after the layer that the fusion removes], post_op)
    or None. apply_directly(model, region, layer, nodes, post_op) -> True when it fused the
    match without code changes."""
    flow = ctx.flow(model)
    for region in flow.regions:
        for node in list(region.graph.nodes):
            layer = _fusable_layer(node, region, flow, ctx)
            if layer is None:
                continue
            found = pattern(node, region)
            if found is None:
                continue
            nodes, post_op = found
            if apply_directly is not None and apply_directly(model, region, layer, nodes, post_op):
                continue
            involved = [node, *nodes]
            owner, inside = owner_for(region, involved), scopes(region, involved)
            if not all(flow.covered(model.get_submodule(s)) for s in inside if s != owner):
                continue  # a module whose code is inlined may also be called from untraced code
            ctx.edits.append(CodeEdit(owner, region.qualname(node.target), kind, post_op, inside))
            ctx.claimed.add(id(layer))
    return model


def _fusable_layer(node, region, flow, ctx):
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
