"""ipex.optimize(): inference optimisation of an nn.Module on the oneDNN kernels, as a list of
passes (ipex/passes) over the model's traced data flow (ipex/dataflow)."""
import contextlib
import contextvars
import copy
import warnings

import torch
from torch import nn

from .dataflow.tracing import editable_modules
from .nn.packed import PackedConv, PackedLinear
from .nn.transformer import PackedTransformerEncoderLayer
from .passes import PIPELINE, tile_batches, verify_sample
from .passes.context import Context
from .passes.options import check_level_and_dtype, resolve
from . import training

__all__ = ["optimize"]

_MARK = "_ipex_optimized"
# Set by sharing_weights(): results keep the original's tensors that no pass replaced.
_SHARE_WEIGHTS = contextvars.ContextVar("ipex_share_weights", default=False)


@contextlib.contextmanager
def sharing_weights():
    """Within this context optimize(inplace=False) gives results whose tensors that no pass
    replaced (embeddings, norms, unfolded biases, ...) share storage with the original's, and
    whose packed layers may read the original's weights where the kernels take them as they
    are (float32 linears on CPUs whose kernels want a plain layout): no second copy in
    memory, but an in-place edit of one shows in the other. For callers that watch the
    original and rebuild on any change (codeless mode)."""
    token = _SHARE_WEIGHTS.set(True)
    try:
        yield
    finally:
        _SHARE_WEIGHTS.reset(token)


def optimize(model, dtype=None, optimizer=None, level="O1", inplace=False, conv_bn_folding=None,
             linear_bn_folding=None, weights_prepack=None, replace_dropout_with_identity=None,
             optimize_lstm=None, split_master_weight_for_bf16=None, fuse_update_step=None,
             auto_kernel_selection=None, sample_input=None, graph_mode=None, concat_linear=None,
             batch_tiling=None):
    """Optimise `model` (in eval mode) for inference on the oneDNN kernels and return it.

    The peer's signature, argument for argument. With `optimizer` (a model in training mode)
    it returns (model, optimizer) ready to train on stock layers (ipex/training.py).
    optimize_lstm, split_master_weight_for_bf16, fuse_update_step, auto_kernel_selection and
    concat_linear are accepted and change nothing: recurrent layers run stock, the kernels are
    always oneDNN's, and the training flags have no inference counterpart.

    Options: dtype None/torch.float32 or torch.bfloat16 (run the result under
    torch.cpu.amp.autocast). level "O0" (every flag below off by default) or "O1" (all on
    except graph_mode); a flag given explicitly wins. inplace: rewrite `model` itself instead
    of a copy (the copy shares weights, so neither doubles weight memory beyond the packed
    copy). sample_input: run once to pack for its shapes and to check the float32 result
    against the original's (on a mismatch, one warning and the original is returned).
    batch_tiling: graph mode runs large batches a slice at a time where the trace of
    sample_input proves samples independent (None: the slice size is measured per batch
    size; an int fixes it and also tiles an eager model; False: off).

    Every rewrite is proven from the data flow of forward, traced with torch.fx (each child
    subtree on its own where the whole model cannot be traced; untraceable code is left
    alone, with one warning), never from names or known classes. The passes, in order:

    1. replace_dropout (replace_dropout_with_identity): dropout modules -> nn.Identity.
    2. fold_batchnorm (conv_bn_folding, linear_bn_folding): a Conv/ConvTranspose/Linear whose
       output only an eval BatchNorm uses, both called once, takes the batch norm in; the
       batch norm becomes an identity stand-in keeping its state-dict keys.
    3. float32_norms (dtype bfloat16): LayerNorm/GroupNorm read bf16 activations as float32
       (stock autocast fails there). No weight changes dtype (Embedding stays float32).
    4. graph_mode (graph_mode, needs sample_input): trace + freeze, the kernels' TorchScript
       pass fuses conv/linear + activation/add; used only if the trace is provably faithful
       (torch.fx traced all of forward, torch.jit.trace warned of nothing), else the passes
       below run instead, with one warning. Its result is a ScriptModule.
    5. prepack (weights_prepack): Conv*/ConvTranspose*/Linear -> PackedConv/PackedLinear,
       nn.TransformerEncoderLayer -> PackedTransformerEncoderLayer; a bare layer given to
       optimize() is returned packed.
    6. fold_weights: folded layers not prepacked become stock layers with folded weights.
    7. fuse_activation (weights_prepack): an activation (module, functional or method) that
       alone uses a layer's output becomes the layer's post-op.
    8. fuse_residual_add (weights_prepack): `layer(x) + other` (+ activation) with nothing
       else using the layer's output runs as one call with a binary-add post-op.
    9. rewrite_code: fusions 7-8 that need code changed rewrite the forward of the smallest
       module whose code holds them (the model's own included); the module keeps its class
       (a subclass of it runs the rewritten code), registered state and hooks.

    Layers that a method other than forward may call directly (a custom `features()`) are
    left as they are (one warning); a method reaching them through forward (`inference()`
    calling self(x)) gets the rewrites.
    10. free_layouts (weights_prepack): convolutions answer contiguous, as stock does for a
        contiguous input, except where the data flow proves that no code sees their output's
        layout (then they keep the kernels' channels-last between layers).
    11. tile_batches (batch_tiling).
    12. verify_sample (sample_input).

    The result is an ordinary nn.Module (or, in graph mode, a ScriptModule): state_dict()
    has the original's keys (loading repacks), deepcopy, pickle, torch.save and .to() work.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"ipex.optimize expects an nn.Module, got {type(model).__name__}")
    if optimizer is not None:
        check_level_and_dtype(level, dtype)
        return training.prepare(model, optimizer, inplace)
    if isinstance(model, torch.jit.ScriptModule):
        warnings.warn("ipex.optimize: a ScriptModule is returned unchanged")
        return model
    if _is_optimized(model):
        raise RuntimeError("ipex.optimize() was already applied to this model; optimize the original model "
                           "once (calling it twice is not supported)")
    if model.training:
        raise RuntimeError("ipex.optimize() optimizes for inference only: call model.eval() first")
    opts = resolve(level, dtype, inplace, sample_input, batch_tiling, conv_bn_folding=conv_bn_folding,
                   linear_bn_folding=linear_bn_folding, weights_prepack=weights_prepack,
                   replace_dropout_with_identity=replace_dropout_with_identity, graph_mode=graph_mode,
                   share_weights=_SHARE_WEIGHTS.get())
    ctx = Context(opts)
    tile_batches.check(model, ctx)
    ctx.reference = verify_sample.reference(model, ctx)
    original = model
    if not opts.inplace:
        model = _copy_sharing_weights(model)
    for step in PIPELINE:
        if ctx.finished is not None and step not in (tile_batches, verify_sample):
            continue
        if step.applies(ctx):
            model = step.run(model, ctx)
    if ctx.mismatch is not None:
        if opts.inplace:
            raise RuntimeError(f"ipex.optimize(inplace=True): the optimized model differs from the original on "
                               f"sample_input (max relative error {ctx.mismatch:.3g}) and the original was rewritten "
                               "in place; optimize with inplace=False to get the original back in that case")
        warnings.warn(f"ipex.optimize: the optimized model differs from the original on sample_input (max "
                      f"relative error {ctx.mismatch:.3g}); the original model is used instead", stacklevel=2)
        return copy.deepcopy(original)
    result = ctx.finished if ctx.finished is not None else model
    if not opts.inplace:
        _unshare(result, original, keep_storage=_SHARE_WEIGHTS.get())
    object.__setattr__(result, _MARK, True)
    return result


def _is_optimized(model):
    if getattr(model, _MARK, False):
        return True
    return any(isinstance(m, (PackedConv, PackedLinear, PackedTransformerEncoderLayer)) for m in model.modules())


def _unshare(result, original, keep_storage=False):
    """Tensors the result still shares with the original (those no pass replaced) become
    tensors of its own, so that loading weights into one (or re-pointing `.data`) never
    changes the other; they are copies unless `keep_storage` (then in-place edits of one show
    in the other)."""
    shared = {t.data_ptr() for t in list(original.parameters()) + list(original.buffers()) if t.numel()}
    copies = {}
    for m in editable_modules(result):
        for table in (m._parameters, m._buffers):
            for name, t in list(table.items()):
                if t is None or not t.numel() or t.data_ptr() not in shared:
                    continue
                if id(t) not in copies:
                    data = t.detach() if keep_storage else t.detach().clone()
                    copies[id(t)] = nn.Parameter(data, t.requires_grad) if isinstance(t, nn.Parameter) else data
                # Assigned as user code would, so that a module keeping its own references to
                # its tensors (RNN's _flat_weights) follows.
                setattr(m, name, copies[id(t)])


def _copy_sharing_weights(model):
    """deepcopy that shares (never duplicates) parameters and buffers: the passes only ever
    replace them, so the copy costs no weight memory until the packed copies are made."""
    memo = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
    return copy.deepcopy(model, memo)
