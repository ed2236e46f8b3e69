"""Pass: a packed layer whose output (after a folded batch norm) only an activation uses runs
that activation as a oneDNN post-op: nn.ReLU, F.relu, torch.relu, x.relu(), GELU, SiLU, ...
(whatever ipex.nn.packed.post_op_of and dataflow.patterns.activation_of know).

An activation module called only there becomes nn.Identity; anything else (a functional
call, a module used in several places like torchvision's `self.relu`) needs the enclosing
module's code changed: that is recorded for the rewrite_code pass."""
from torch import nn

from ..dataflow import patterns
from .context import replace_everywhere
from .fusion import record_fusions


def applies(ctx):
    return ctx.opts.weights_prepack


def run(model, ctx):
    flow = ctx.flow(model)

    def replace_module(model, region, layer, nodes, post_op):
        act_node = nodes[-1]
        if act_node.op != "call_module":
            return False
        act = region.root.get_submodule(act_node.target)
        if not flow.known(act) or list(act.parameters()) or list(act.buffers()):
            return False
        replace_everywhere(model, act, nn.Identity())
        layer.fuse_activation(*post_op)
        return True

    return record_fusions(model, ctx, "activation", patterns.activation_chain, replace_module)
