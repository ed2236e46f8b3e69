"""Batch-norm folding into the preceding convolution or linear layer, done on modules.

Pairs are found from the module tree, never from a trace of forward(), so folding works
whatever method the model is called through: a BatchNorm that directly follows a Conv/Linear
in an nn.Sequential, or sibling attributes named like conv1/bn1, conv/bn, fc1/bn1 (the
convention of torchvision and most hand-written models). frontend.optimize() checks the
folded model against the original on sample_input when one is given.
"""
import re

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_NAME = re.compile(r"^(.*?)(conv|fc|linear)(\w*)$")


class FoldedBatchNorm(nn.Module):
    """Stands in for a BatchNorm folded into its producer: identity in forward, but it keeps
    the batch-norm state so that state_dict() still matches the original model."""

    def __init__(self, bn):
        super().__init__()
        self.num_features = bn.num_features
        self.eps = bn.eps
        self.register_buffer("weight", bn.weight.detach() if bn.affine else torch.ones(bn.num_features))
        self.register_buffer("bias", bn.bias.detach() if bn.affine else torch.zeros(bn.num_features))
        self.register_buffer("running_mean", bn.running_mean.detach())
        self.register_buffer("running_var", bn.running_var.detach())
        if bn.num_batches_tracked is not None:
            self.register_buffer("num_batches_tracked", bn.num_batches_tracked.detach())
        self._affine = bn.affine

    def forward(self, x):
        return x

    def attach(self, producer, parent):
        """Remembers the layer folded into (unregistered) and whether load_state_dict reaches
        us after it (siblings are loaded in registration order)."""
        object.__setattr__(self, "_producer", producer)
        names = list(parent._modules.keys())
        me = next(n for n, m in parent._modules.items() if m is self)
        them = next(n for n, m in parent._modules.items() if m is producer)
        self._after = names.index(me) > names.index(them)
        self.pending = None

    def loads_after(self, producer):
        return getattr(self, "_after", False) and self.__dict__.get("_producer") is producer

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        if getattr(self, "pending", None) is not None:
            w, b = self.pending
            self.pending = None
            self.__dict__["_producer"]._repack(w, b)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        for name, buf in self._buffers.items():
            if name in ("weight", "bias") and not self._affine:
                continue
            destination[prefix + name] = buf if keep_vars else buf.detach()

    def scale_shift(self):
        """(scale, shift) with bn(y) == y * scale + shift, in float32."""
        scale = self.weight.float() / torch.sqrt(self.running_var.float() + self.eps)
        shift = self.bias.float() - self.running_mean.float() * scale
        return scale, shift

    def extra_repr(self):
        return f"{self.num_features}, folded"


def fold(weight, bias, bn, out_dim=0):
    """Weight and bias of layer-then-bn as one layer (float32)."""
    scale, shift = bn.scale_shift()
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    w = weight.float() * scale.view(shape)
    b = shift if bias is None else bias.float() * scale + shift
    return w, b


def unfold(weight, bias, bn, had_bias, out_dim=0):
    """Inverse of fold(): the layer's own weight and bias (bias None if it had none)."""
    scale, shift = bn.scale_shift()
    safe = torch.where(scale == 0, torch.ones_like(scale), scale)
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    w = weight.float() / safe.view(shape)
    b = (bias.float() - shift) / safe if had_bias else None
    return w, b


def _usable_bn(bn, channels):
    return (type(bn) in _BN and not bn.training and bn.track_running_stats and bn.running_mean is not None
            and bn.num_features == channels)


def find_pairs(model):
    """[(parent, layer_name, bn_name)] of foldable (Conv|Linear, BatchNorm) siblings."""
    counts = {}
    for m in model.modules():
        for c in m.children():
            counts[id(c)] = counts.get(id(c), 0) + 1
    shared = {k for k, v in counts.items() if v > 1}  # a reused module cannot be folded

    pairs = []
    for parent in model.modules():
        names = list(parent._modules.keys())
        mods = parent._modules
        taken = set()
        if isinstance(parent, nn.Sequential):
            for a, b in zip(names, names[1:]):
                la, lb = mods[a], mods[b]
                if la is None or lb is None or id(la) in shared or id(lb) in shared:
                    continue
                ch = _out_channels(la)
                if ch is not None and _usable_bn(lb, ch):
                    pairs.append((parent, a, b))
                    taken.update((a, b))
            continue
        for a in names:
            m = _NAME.match(a)
            la = mods[a]
            if not m or a in taken or la is None or id(la) in shared:
                continue
            ch = _out_channels(la)
            if ch is None:
                continue
            pre, _, suffix = m.groups()
            for bname in (f"{pre}bn{suffix}", f"{pre}norm{suffix}", f"{pre}batchnorm{suffix}"):
                lb = mods.get(bname)
                if lb is not None and bname not in taken and id(lb) not in shared and _usable_bn(lb, ch):
                    pairs.append((parent, a, bname))
                    taken.update((a, bname))
                    break
    return pairs


def _out_channels(layer):
    if type(layer) in _CONV:
        return layer.out_channels
    if type(layer) is nn.Linear:
        return layer.out_features
    return None
