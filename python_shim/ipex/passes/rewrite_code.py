"""Pass: applies the fusions that need code changed (recorded by fuse_activation and
fuse_residual_add) by rewriting the forward of the smallest module whose code holds them
(the model itself included): the layer's call takes the residual operand (layer(x, other)),
the fused add/activation calls disappear, and so do the calls of folded batch norms.

The module stays the same object of (a subclass of) its own class, with the same registered
modules, parameters, buffers and hooks (dataflow.rewrite); its rewritten forward computes
what the original did. Layers that another method of a module may call directly are never
fused (DataFlow.known), so those methods compute what they did, too."""
from ..dataflow import patterns
from ..dataflow.flow import common_owner
from ..dataflow.rewrite import drop_pass_throughs, rewrite_forward, traced
from ..dataflow.tracing import Region


def applies(ctx):
    return bool(ctx.edits)


def owner_for(region, nodes):
    """Qualified name of the module whose code is to change for these nodes: the deepest one
    whose code encloses them all (the model itself included)."""
    return region.qualname(common_owner(nodes))


def scopes(region, nodes):
    """Qualified names of the modules whose code created these nodes."""
    return frozenset(region.qualname(n.meta.get("owner", "")) for n in nodes)


def _relative(name, owner):
    if not owner:
        return name
    return "" if name == owner else name[len(owner) + 1:]


def _depth(name):
    return name.count(".") + 1 if name else 0


def run(model, ctx):
    # Deepest first: a module holding another is rewritten after it, and keeps calling it
    # (only the modules whose code holds an edit's nodes are inlined).
    for owner in sorted({e.owner for e in ctx.edits}, key=lambda n: -_depth(n)):
        _rewrite(model, owner, [e for e in ctx.edits if e.owner == owner])
    return model


def _inlined(owner, edits):
    """Names, relative to owner, of the modules whose code the rewrite needs inlined."""
    names = set()
    for edit in edits:
        for scope in edit.scopes:
            relative = _relative(scope, owner)
            parts = relative.split(".") if relative else []
            names.update(".".join(parts[:i]) for i in range(len(parts) + 1))
    return names


def _rewrite(model, owner, edits):
    module = model.get_submodule(owner)
    try:
        graph, constants = traced(module, _inlined(owner, edits))
    except Exception:  # noqa: BLE001 - traced before, so this is unexpected; then leave it
        return
    region = Region("", module, graph)
    applied = []
    for edit in edits:
        local = _relative(edit.layer, owner)
        calls = [n for n in graph.nodes if n.op == "call_module" and n.target == local]
        if len(calls) != 1:
            continue
        layer = module.get_submodule(local)
        if edit.kind == "activation" and _fuse_activation(graph, region, calls[0], edit.post_op):
            applied.append((layer, edit.post_op))
        elif edit.kind == "residual" and _fuse_residual(graph, region, calls[0], edit.post_op):
            applied.append((layer, edit.post_op))
    if not applied:
        return
    drop_pass_throughs(graph, module)
    rewrite_forward(module, graph, constants)
    for layer, (name, args) in applied:
        layer.fuse_activation(name, args)


def _fuse_activation(graph, region, layer_node, expected):
    found = patterns.activation_chain(layer_node, region)
    if found is None or tuple(found[1]) != tuple(expected):
        return False
    act = found[0][-1]
    act.replace_all_uses_with(act.args[0])
    graph.erase_node(act)
    return True


def _fuse_residual(graph, region, layer_node, expected):
    found = patterns.residual_chain(layer_node, region)
    if found is None or (found[1][0], list(found[1][1])) != (expected[0], list(expected[1])):
        return False
    nodes, _ = found
    last, skipped = patterns.follow(layer_node, region)
    add = nodes[len(skipped)]
    other = patterns.residual_add(add, last)
    with graph.inserting_before(add):
        fused = graph.create_node("call_module", layer_node.target, (layer_node.args[0], other), {})
    fused.meta = dict(layer_node.meta)
    nodes[-1].replace_all_uses_with(fused)
    for node in reversed([layer_node, *nodes]):
        graph.erase_node(node)
    return True
