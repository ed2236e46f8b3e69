"""Batch-norm folding into the layer whose output the batch norm alone consumes.

Which pairs fold is decided from the model's traced data flow (passes/fold_batchnorm.py);
this file holds the stand-in left in the batch norm's place and the weight arithmetic.
"""
import torch
from torch import nn



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

    def attach(self, producer, loads_after_producer):
        """Remembers the layer folded into (unregistered) and whether load_state_dict reaches
        us after it (it visits modules in the order of model.modules())."""
        object.__setattr__(self, "_producer", producer)
        self._after = bool(loads_after_producer)
        self.pending = None

    def retarget(self, producer):
        """The layer that replaced the one attached (prepacking swaps the module)."""
        object.__setattr__(self, "_producer", producer)

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
