"""ipex.optimize(): inference optimisation of an nn.Module on the oneDNN kernels.

Everything is done on the module tree (never through a trace of forward), so the result is
the same whatever method the model is later called through. See kernels/ for the operators.
"""
import copy
import warnings

import torch
from torch import nn

from . import _kernels
from .nn import batch_tiling as tiling
from .nn import folding
from .nn.packed import PackedConv, PackedLinear, post_op_of
from .nn.resnet_blocks import fuse_resnet_blocks
from .nn.transformer import PackedTransformerEncoderLayer, can_pack

__all__ = ["optimize"]

_LEVELS = {
    "O0": dict(conv_bn_folding=False, linear_bn_folding=False, weights_prepack=False,
               replace_dropout_with_identity=False, graph_mode=False),
    "O1": dict(conv_bn_folding=True, linear_bn_folding=True, weights_prepack=True,
               replace_dropout_with_identity=True, graph_mode=False),
}
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_DROPOUTS = (nn.Dropout, nn.Dropout1d if hasattr(nn, "Dropout1d") else nn.Dropout, nn.Dropout2d, nn.Dropout3d,
             nn.AlphaDropout, nn.FeatureAlphaDropout)
_MARK = "_ipex_optimized"


def _is_optimized(model):
    if getattr(model, _MARK, False):
        return True
    return any(isinstance(m, (PackedConv, PackedLinear, PackedTransformerEncoderLayer)) for m in model.modules())


def _copy_sharing_weights(model):
    """deepcopy that shares (never duplicates) parameters and buffers: optimize() only ever
    replaces them, so the copy costs no weight memory until the packed copies are made."""
    memo = {}
    for t in list(model.parameters()) + list(model.buffers()):
        memo[id(t)] = t
    return copy.deepcopy(model, memo)


def _fold_batchnorms(model, convs, linears):
    folded = {}
    for parent, lname, bname in folding.find_pairs(model):
        layer = parent._modules[lname]
        if (type(layer) is nn.Linear and not linears) or (type(layer) is not nn.Linear and not convs):
            continue
        stand_in = folding.FoldedBatchNorm(parent._modules[bname])
        parent._modules[bname] = stand_in
        folded[id(layer)] = (stand_in, bname)
    return folded


def _fuse_sequential_activations(model):
    """A packed layer directly followed by a fusable activation in an nn.Sequential takes the
    activation as a post-op; the activation becomes Identity (skipping folded batch norms)."""
    for seq in model.modules():
        if not isinstance(seq, nn.Sequential):
            continue
        names = list(seq._modules.keys())
        for i, name in enumerate(names):
            layer = seq._modules[name]
            if not isinstance(layer, (PackedConv, PackedLinear)) or layer.post_op[0] != "none":
                continue
            j = i + 1
            while j < len(names) and isinstance(seq._modules[names[j]], folding.FoldedBatchNorm):
                j += 1
            if j < len(names):
                op = post_op_of(seq._modules[names[j]])
                if op is not None:
                    layer.fuse_activation(*op)
                    seq._modules[names[j]] = nn.Identity()


def _replace(model, dtype, prepack, dropout, folded):
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if child is None:
                continue
            if dropout and type(child) in _DROPOUTS:
                parent._modules[name] = nn.Identity()
            elif prepack and (type(child) in _CONVS or type(child) is nn.Linear):
                bn, _ = folded.get(id(child), (None, None))
                cls = PackedLinear if type(child) is nn.Linear else PackedConv
                packed = cls(child, dtype, bn=bn)
                parent._modules[name] = packed
                if bn is not None:
                    bn.attach(packed, parent)
            elif prepack and type(child) is nn.TransformerEncoderLayer and can_pack(child):
                parent._modules[name] = PackedTransformerEncoderLayer(child, dtype)
    if prepack and type(model) in _CONVS + (nn.Linear,):
        raise ValueError("ipex.optimize: pass a model containing the layer, not the bare layer")


def _cast_other_weights(model, dtype):
    # As the reference does for inference: Embedding weights follow the requested dtype.
    for m in model.modules():
        if type(m) is nn.Embedding:
            m.weight.data = m.weight.data.to(dtype)


def _call(model, sample_input):
    if isinstance(sample_input, dict):
        return model(**sample_input)
    if isinstance(sample_input, (tuple, list)):
        return model(*sample_input)
    return model(sample_input)


def _graph(model, sample_input, dtype):
    """Trace + freeze the (folded, unpacked) model; the kernels' TorchScript pre-pass then
    swaps frozen conv/linear nodes and their activation/add for the fused ipex ops when the
    graph executor optimises it. Under bf16 autocast the weight casts fold into bf16
    constants during freezing, so the packed contexts are bf16."""
    _kernels.ops().set_jit_fusion(True)
    args = tuple(sample_input) if isinstance(sample_input, (tuple, list)) else (sample_input,)
    with torch.no_grad(), torch.cpu.amp.autocast(enabled=dtype == torch.bfloat16):
        traced = torch.jit.freeze(torch.jit.trace(model, args, check_trace=False))
        for _ in range(2):  # profiling runs, after which the optimised graph is built
            traced(*args)
    return traced


def optimize(model, dtype=None, level="O1", inplace=False, conv_bn_folding=None, linear_bn_folding=None,
             weights_prepack=None, replace_dropout_with_identity=None, sample_input=None, graph_mode=None,
             batch_tiling=None):
    """Optimise `model` for inference on the oneDNN kernels and return it.

    dtype: None/torch.float32 or torch.bfloat16 (falls back to float32 with one warning on
    CPUs without native bf16). level: "O0" (nothing by default) or "O1" (every flag below
    on except graph_mode). Flags left None take the level's value. inplace: modify `model`
    instead of a copy (the copy shares weights, so neither way doubles weight memory beyond
    the packed copy). sample_input: run once to pack for its shapes and to check the
    result against the original. graph_mode: return a frozen TorchScript module whose
    conv/linear (+activation/add) nodes run on the fused kernels (needs sample_input).
    batch_tiling: None (auto) runs large batches a slice at a time where the traced
    sample_input shows every operation treats samples independently (CNNs: a slice's
    activations stay in cache), with the slice size measured on the first batch of each
    size; an int fixes the slice size; False turns it off. Graph mode then returns the
    frozen module inside an ipex.nn.BatchTiled.
    """
    if level not in _LEVELS:
        raise ValueError(f"ipex.optimize: level must be 'O0' or 'O1', got {level!r}")
    if dtype not in (None, torch.float32, torch.bfloat16):
        raise ValueError(f"ipex.optimize: dtype must be None, torch.float32 or torch.bfloat16, got {dtype}")
    if isinstance(model, torch.jit.ScriptModule):
        warnings.warn("ipex.optimize: a ScriptModule is returned unchanged")
        return model
    if not isinstance(model, nn.Module):
        raise TypeError(f"ipex.optimize expects an nn.Module, got {type(model).__name__}")
    if _is_optimized(model):
        raise RuntimeError("ipex.optimize() was already applied to this model; optimize the original model "
                           "once (calling it twice is not supported)")
    if model.training:
        raise RuntimeError("ipex.optimize() optimizes for inference only: call model.eval() first")
    opts = dict(_LEVELS[level])
    for key, val in (("conv_bn_folding", conv_bn_folding), ("linear_bn_folding", linear_bn_folding),
                     ("weights_prepack", weights_prepack),
                     ("replace_dropout_with_identity", replace_dropout_with_identity), ("graph_mode", graph_mode)):
        if val is not None:
            opts[key] = bool(val)
    if opts["graph_mode"] and sample_input is None:
        raise ValueError("ipex.optimize(graph_mode=True) needs sample_input to trace the model")
    if opts["graph_mode"] and opts["weights_prepack"] and any(
            type(m) is nn.TransformerEncoderLayer and can_pack(m) for m in model.modules()):
        # A traced encoder layer is PyTorch's fused fast-path op, which the TorchScript pass
        # cannot improve and which fails under bf16 autocast in torch 1.13; the packed eager
        # layer is the fast path.
        warnings.warn("ipex.optimize: graph_mode is not applied to models with nn.TransformerEncoderLayer; "
                      "their layers run as packed oneDNN layers instead")
        opts["graph_mode"] = False
    tile = _batch_tile(model, sample_input, batch_tiling)
    dtype = dtype or torch.float32

    original = model
    reference = None
    if sample_input is not None and dtype == torch.float32:
        # A float32 reference even when called under autocast (where some stock modules,
        # nn.TransformerEncoderLayer in torch 1.13, fail); bf16 results are not compared.
        with torch.no_grad(), torch.cpu.amp.autocast(enabled=False):
            reference = _call(original, sample_input)
    if not inplace:
        model = _copy_sharing_weights(model)

    if opts["graph_mode"]:
        # The TorchScript pass packs the frozen weights itself.
        opts["weights_prepack"] = False
    folded = {}
    if opts["weights_prepack"]:
        _kernels.ops()  # fail early and clearly if the kernels are not built
        folded = _fold_batchnorms(model, opts["conv_bn_folding"], opts["linear_bn_folding"])
    elif opts["conv_bn_folding"] or opts["linear_bn_folding"]:
        _fold_without_prepack(model, opts["conv_bn_folding"], opts["linear_bn_folding"])
    _replace(model, dtype, opts["weights_prepack"], opts["replace_dropout_with_identity"], folded)
    if opts["weights_prepack"]:
        _fuse_sequential_activations(model)
        fuse_resnet_blocks(model)
    if dtype == torch.bfloat16:
        _cast_other_weights(model, dtype)
    object.__setattr__(model, _MARK, True)

    if sample_input is not None:
        with torch.no_grad(), torch.cpu.amp.autocast(enabled=dtype == torch.bfloat16):
            out = _call(model, sample_input)  # also packs the weights for these shapes
        if dtype == torch.float32 and isinstance(out, torch.Tensor) and isinstance(reference, torch.Tensor):
            scale = max(reference.abs().max().item(), 1.0)
            err = (out.float() - reference.float()).abs().max().item() / scale
            if err > 1e-3:
                raise RuntimeError(f"ipex.optimize: the optimized model differs from the original on sample_input "
                                   f"(max relative error {err:.3g}); retry with conv_bn_folding=False / "
                                   "linear_bn_folding=False")
    if opts["graph_mode"]:
        traced = _graph(model, sample_input, dtype)
        if tile is False:
            return traced
        tiled = tiling.BatchTiled(traced, tile)
        object.__setattr__(tiled, _MARK, True)
        return tiled
    if tile is not False:
        tiling.tile_forward_in_place(model, tile)
    return model


def _batch_tile(model, sample_input, setting):
    """False (no tiling), None (slice size measured later) or the fixed slice size."""
    if setting is False:
        return False
    fixed = None
    if setting is not None and setting is not True:
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
            raise ValueError(f"ipex.optimize: batch_tiling must be None, False or a slice size >= 1, got {setting!r}")
        fixed = setting
    sample = sample_input
    if isinstance(sample, (tuple, list)) and len(sample) == 1:
        sample = sample[0]
    if sample is not None and tiling.is_batch_independent(model, sample):
        return fixed
    if fixed is not None:
        raise ValueError("ipex.optimize: batch_tiling needs a single-tensor sample_input through which every "
                         "operation of the model treats samples independently; "
                         "this model or sample_input does not show that")
    return False


def _fold_without_prepack(model, convs, linears):
    """Folding with stock layers kept (weights_prepack=False): new weights, BN -> Identity."""
    for parent, lname, bname in folding.find_pairs(model):
        layer, bn = parent._modules[lname], parent._modules[bname]
        is_linear = type(layer) is nn.Linear
        if (is_linear and not linears) or (not is_linear and not convs):
            continue
        w, b = folding.fold(layer.weight.detach(), None if layer.bias is None else layer.bias.detach(),
                            folding.FoldedBatchNorm(bn))
        new = copy.copy(layer)
        new._parameters = dict(layer._parameters)
        new.weight = nn.Parameter(w.to(layer.weight.dtype), requires_grad=False)
        new.bias = nn.Parameter(b.to(layer.weight.dtype), requires_grad=False)
        parent._modules[lname] = new
        parent._modules[bname] = nn.Identity()
