"""Inference modules backed by prepacked oneDNN contexts (torch.ops.ipex.*).

The weight lives only inside the context, in the layout the primitive wants; `weight` and
`bias` are read-only views materialised on access in PyTorch's shape, and state_dict() /
load_state_dict() use the original keys and shapes (with any folded batch norm undone), so a
state dict moves freely between the original and the optimized model.
"""

import torch
from torch import nn
import torch.nn.functional as F

from .. import _C
from .._kernels import ops
from . import folding

_POST_OPS = {
    # activation module type -> (post-op name, scalar args from the module)
    nn.ReLU: ("relu", lambda m: []),
    nn.GELU: ("gelu_tanh", lambda m: []),  # replaced by gelu_erf below when approximate == "none"
    nn.SiLU: ("silu", lambda m: []),
    nn.Sigmoid: ("sigmoid", lambda m: []),
    nn.Tanh: ("tanh", lambda m: []),
    nn.Mish: ("mish", lambda m: []),
    nn.Hardswish: ("hardswish", lambda m: []),
    nn.Hardsigmoid: ("hardsigmoid", lambda m: []),
    nn.LeakyReLU: ("leaky_relu", lambda m: [float(m.negative_slope)]),
    nn.ELU: ("elu", lambda m: [float(m.alpha)]),
    nn.Hardtanh: ("clamp", lambda m: [float(m.min_val), float(m.max_val)]),  # also ReLU6
}


def post_op_of(module):
    """(name, args) for an activation module that can be fused, else None."""
    entry = _POST_OPS.get(type(module))
    if entry is None:
        return None
    name, args = entry
    if isinstance(module, nn.GELU):
        name = "gelu_erf" if getattr(module, "approximate", "none") == "none" else "gelu_tanh"
    return name, args(module)


_BF16_ENUM = 15  # c10::ScalarType::BFloat16, as returned by the contexts' compute_dtype()


class _Packed(nn.Module):
    """Shared state-dict plumbing; subclasses define _pack(weight, bias) and _out_dim."""

    _out_dim = 0

    def _init_common(self, layer, dtype, bn, row_scale=None):
        self._dtype = dtype
        self._had_bias = layer.bias is not None
        # FoldedBatchNorm registered on the parent (kept out of our own children so that the
        # state dict keys stay the original ones).
        object.__setattr__(self, "_bn", bn)
        self._row_scale = row_scale  # per-output scale folded in (attention's 1/sqrt(d))
        self.post_op = ("none", [])
        w = layer.weight.detach()
        b = None if layer.bias is None else layer.bias.detach()
        self._repack(w, b)

    def _repack(self, weight, bias):
        if self._bn is not None:
            weight, bias = folding.fold(weight, bias, self._bn, self._out_dim)
        if self._row_scale is not None:
            weight = weight * self._row_scale.view(-1, *([1] * (weight.dim() - 1))).to(weight.dtype)
            bias = None if bias is None else bias * self._row_scale.to(bias.dtype)
        self._ctx = self._pack(weight, bias)
        self._runner = None

    def _call(self, x, post_op, args, other, *extra):
        """Runs the context through its pybind runner (made on first use: it does not
        pickle), which skips torch.ops' ~12 us of __torch_function__ lookup on a ScriptObject
        argument; under torch.jit.trace through the torch.ops op, which the tracer records."""
        if torch.jit.is_tracing():
            return getattr(ops(), self._OP)(x, self._ctx, post_op, list(args), other, *extra)
        if self.__dict__.get("_runner") is None:
            self._runner = getattr(_C, self._RUNNER)(self._ctx)
        return self._runner.run(x, post_op, args, other, *extra)

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live module keeps its runner
        state["_runner"] = None
        return state

    def fuse_activation(self, name, args):
        self.post_op = (name, list(args))

    @property
    def weight(self):
        w, _ = self._public()
        return w

    @property
    def bias(self):
        _, b = self._public()
        return b

    def _public(self):
        w = self._ctx.weight()
        b = self._ctx.bias()
        if self._row_scale is not None:
            dt = w.dtype
            w = (w.float() / self._row_scale.view(-1, *([1] * (w.dim() - 1)))).to(dt)
            b = None if b is None else b / self._row_scale
        if self._bn is not None:
            w, b = folding.unfold(w, b, self._bn, self._had_bias, self._out_dim)
            w = w.to(self._ctx_dtype())
        elif not self._had_bias:
            b = None
        return w, b

    def _ctx_dtype(self):
        return torch.bfloat16 if self._ctx.compute_dtype() == int(_BF16_ENUM) else torch.float32

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        w, b = self._public()
        destination[prefix + "weight"] = w
        if b is not None:
            destination[prefix + "bias"] = b

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        keys = ["weight"] + (["bias"] if self._had_bias else [])
        vals = {}
        for k in keys:
            if prefix + k in state_dict:
                vals[k] = state_dict[prefix + k]
            else:
                missing_keys.append(prefix + k)
        if "weight" not in vals:
            return
        w_now, b_now = self._public()
        w = vals["weight"].detach()
        if tuple(w.shape) != tuple(w_now.shape):
            error_msgs.append(f"size mismatch for {prefix}weight: copying a param with shape {tuple(w.shape)}, "
                              f"the shape in current model is {tuple(w_now.shape)}.")
            return
        b = vals["bias"].detach() if "bias" in vals else b_now  # a missing bias keeps its value
        w = w.float() if self._bn is not None else w
        if self._bn is not None and self._bn.loads_after(self):
            # load_state_dict visits children in order and hands each only its own keys:
            # the folded batch norm refolds once its new statistics are in.
            self._bn.pending = (w, b)
        else:
            self._repack(w, b)


class PackedConv(_Packed):
    """Conv1d/2d/3d and ConvTranspose1d/2d/3d with a prepacked weight and fused post-ops."""
    _RUNNER, _OP = "ConvRunner", "conv_run"

    def __init__(self, conv, dtype=torch.float32, bn=None):
        super().__init__()
        self.transposed = isinstance(conv, nn.modules.conv._ConvTransposeNd)
        self._out_dim = 1 if self.transposed else 0
        nd = conv.weight.dim() - 2
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.dilation = conv.kernel_size, conv.stride, conv.dilation
        self.groups, self.padding, self.padding_mode = conv.groups, conv.padding, conv.padding_mode
        self.output_padding = tuple(getattr(conv, "output_padding", (0,) * nd))
        self._pad = None
        if conv.padding_mode != "zeros":
            # Non-zero padding modes pad explicitly, as nn.Conv does, then convolve unpadded.
            self._pad = (conv._reversed_padding_repeated_twice, conv.padding_mode)
            pl = pr = [0] * nd
        elif isinstance(conv.padding, str):
            if conv.padding == "valid":
                pl = pr = [0] * nd
            else:  # "same": the total padding d*(k-1), the extra element on the right like F.conv
                tot = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
                pl = [t // 2 for t in tot]
                pr = [t - l for t, l in zip(tot, pl)]
        else:
            pl = pr = list(conv.padding)
        self._geom = (list(conv.stride), list(pl), list(pr), list(conv.dilation), conv.groups,
                      list(self.output_padding))
        self._init_common(conv, dtype, bn)

    def _pack(self, weight, bias):
        s, pl, pr, d, g, op = self._geom
        return ops().conv_prepack(weight, bias, s, pl, pr, d, g, self.transposed, op, self._dtype)

    def forward(self, x, other=None):
        name, args = self.post_op
        return self.run_fused(x, name, other, args)

    def run_fused(self, x, post_op, other=None, args=()):
        """Runs with an explicit post-op chain (e.g. "badd+relu" with `other`)."""
        if self._pad is not None:
            x = F.pad(x, self._pad[0], mode=self._pad[1])
        return self._call(x, post_op, args, other)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"transposed={self.transposed}, post_op={self.post_op[0]}, dtype={self._dtype}, "
                f"bn_folded={self._bn is not None}")


class PackedLinear(_Packed):
    """nn.Linear with a prepacked weight and fused post-ops."""
    _RUNNER, _OP = "LinearRunner", "linear_run"

    def __init__(self, linear, dtype=torch.float32, bn=None, row_scale=None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._init_common(linear, dtype, bn, row_scale)

    def _pack(self, weight, bias):
        return ops().linear_prepack(weight, bias, self._dtype)

    def forward(self, x, other=None):
        name, args = self.post_op
        return self._call(x, name, args, other)

    def run(self, x, post_op="none", args=(), other=None, out_dtype=None):
        return self._call(x, post_op, args, other, out_dtype)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, post_op={self.post_op[0]}, "
                f"dtype={self._dtype}, bn_folded={self._bn is not None}")
