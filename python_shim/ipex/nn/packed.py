"""Inference modules backed by prepacked oneDNN contexts (torch.ops.ipex.*).

The weight lives only inside the context, in the layout the primitive wants (where that is
PyTorch's own layout, the tensor the layer was packed from, not a copy); `weight` and
`bias` are read-only views materialised on access in PyTorch's shape, and state_dict() /
load_state_dict() use the original keys and shapes (with any folded batch norm undone), so a
state dict moves freely between the original and the optimized model.

Whatever the kernels cannot take (float64, a gradient wanted, an operand oneDNN cannot
broadcast exactly like PyTorch, ...) the context itself runs on ATen, so every input stock
accepts works. forward() is TorchScript-compatible: scripted and traced models call the
context through torch.ops; eager calls take a pybind runner (torch.ops costs ~12 us a call
with a ScriptObject argument).
"""
from typing import List, Optional, Tuple

import contextlib
import contextvars
import copy

import torch
from torch import Tensor, nn
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


# Set within reading_weights_in_place().
_READ_IN_PLACE = contextvars.ContextVar("ipex_packed_read_in_place", default=False)


@contextlib.contextmanager
def reading_weights_in_place():
    """Layers packed within this context may read the given layer's weight and bias where
    they are (the kernels do where they take PyTorch's layout: float32 linears on CPUs whose
    kernels want a plain layout), so an in-place edit of those shows in the packed layer.
    For callers that rebuild on any change (see frontend.sharing_weights). Outside it a
    packed layer gets copies of its own."""
    token = _READ_IN_PLACE.set(True)
    try:
        yield
    finally:
        _READ_IN_PLACE.reset(token)


def reads_weights_in_place():
    """True within reading_weights_in_place()."""
    return _READ_IN_PLACE.get()


class _Packed(nn.Module):
    """Shared state-dict plumbing; subclasses define _pack(weight, bias) and _out_dim."""

    __jit_unused_properties__ = ["post_op"]
    _post_name: str
    _post_args: List[float]
    _row_scale: Optional[Tensor]
    _unfold: Optional[Tuple[Tensor, Tensor]]
    _out_dim = 0

    def __init_subclass__(cls, **kwargs):
        # TorchScript reads attribute annotations from a class and its first base only.
        super().__init_subclass__(**kwargs)
        cls.__annotations__ = {**_Packed.__annotations__, **cls.__dict__.get("__annotations__", {})}

    def _init_common(self, layer, dtype, bn, row_scale=None):
        # Layers in another floating type keep it (the context then runs them on ATen); a
        # bfloat16 layer stays bfloat16.
        wdt = layer.weight.dtype
        self._dtype = dtype if wdt == torch.float32 else wdt
        self.training = layer.training
        self._had_bias = layer.bias is not None
        # FoldedBatchNorm registered on the parent (kept out of our own children so that the
        # state dict keys stay the original ones).
        object.__setattr__(self, "_bn", bn)
        self._row_scale = row_scale  # per-output scale folded in (attention's 1/sqrt(d))
        self._out_dim = self._out_dim  # an instance attribute, which TorchScript sees
        self._post_name = "none"
        self._post_args = []
        w = layer.weight.detach()
        b = None if layer.bias is None else layer.bias.detach()
        if not reads_weights_in_place():  # copies of its own: editing `layer` never changes this one
            w, b = w.clone(), None if b is None else b.clone()
        self._repack(w, b)

    def _check_not_training_folded(self):
        # In training mode stock's batch norm uses the batch's statistics: the folded running
        # ones would answer silently wrong.
        if self.training and self._unfold is not None:
            raise RuntimeError("ipex.optimize() folded a batch norm into this layer for inference; it cannot run in "
                               "training mode (call .eval(), or train the original model)")

    @property
    def post_op(self):
        """(chain, scalar args) fused after the layer, e.g. ("relu", []) or ("badd+relu", [])."""
        return self._post_name, list(self._post_args)

    @post_op.setter
    def post_op(self, value):
        name, args = value
        self._post_name = str(name)
        self._post_args = [float(a) for a in args]

    def fuse_activation(self, name, args):
        self.post_op = (name, args)

    def _repack(self, weight, bias):
        self._unfold = None  # the folded batch norm's (scale, shift), to give the weight back
        if self._bn is not None:
            weight, bias = folding.fold(weight, bias, self._bn, self._out_dim)
            self._unfold = self._bn.scale_shift()
        if self._row_scale is not None:
            weight = weight * self._row_scale.view(-1, *([1] * (weight.dim() - 1))).to(weight.dtype)
            bias = None if bias is None else bias * self._row_scale.to(bias.dtype)
        self._ctx = self._pack(weight, bias)
        self._runner = None

    @torch.jit.unused
    def _runner_for_ctx(self):
        """The context's pybind runner, made on first use (it does not pickle)."""
        runner = self.__dict__.get("_runner")
        if runner is None:
            runner = getattr(_C, self._RUNNER)(self._ctx)
            self._runner = runner
        return runner

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live module keeps its runner
        state["_runner"] = None
        state.pop("_variants", None)
        return state

    def __deepcopy__(self, memo):
        # The copy gets its own context (a ScriptObject deep-copies by reference otherwise) and
        # deep copies of everything else, sharing what the memo already maps.
        new = self.__class__.__new__(self.__class__)
        memo[id(self)] = new
        state = self.__getstate__()
        ctx = state.pop("_ctx")
        for key, value in state.items():
            new.__dict__[key] = copy.deepcopy(value, memo)
        new.__dict__["_ctx"] = new._pack(ctx.weight(), ctx.bias())  # the folded weights as they are
        return new

    def __setattr__(self, name, value):
        # `layer.weight = ...` / `layer.bias = ...` as on a stock layer: the layer repacks.
        if name in ("weight", "bias") and "_ctx" in self.__dict__:
            w, b = self._public()
            # Copies: the context may read what it is given where it is.
            if name == "weight":
                w = value.detach().clone()
            else:
                b = None if value is None else value.detach().clone()
                self._had_bias = value is not None
            self._repack(w, b)
            return
        super().__setattr__(name, value)

    def _apply(self, fn):
        """Module.to()/.double()/.half()/...: the weight follows as a parameter would, and the
        layer is repacked for its new dtype (float32/bfloat16 pack, others run on ATen)."""
        super()._apply(fn)
        w, b = self._public()
        new_w = fn(w)
        if new_w.dtype != w.dtype or new_w.device != w.device:
            self._dtype = new_w.dtype
            self._repack(new_w, None if b is None else fn(b))
        return self

    @property
    def weight(self) -> Tensor:
        """The layer's own weight in PyTorch's shape (a fresh tensor)."""
        return self._public()[0]

    @property
    def bias(self) -> Optional[Tensor]:
        return self._public()[1]

    def _public(self) -> Tuple[Tensor, Optional[Tensor]]:
        """(weight, bias) as the original layer had them: folded scales undone."""
        w = self._ctx.weight()
        b = self._ctx.bias()
        dt = w.dtype
        shape = [1] * w.dim()
        shape[self._out_dim] = -1
        rows = self._row_scale
        if rows is not None:
            w = (w.float() / rows.view(shape)).to(dt)
            if b is not None:
                b = b / rows
        unfold = self._unfold
        if unfold is not None:
            scale, shift = unfold
            safe = torch.where(scale == 0, torch.ones_like(scale), scale)
            w = (w.float() / safe.view(shape)).to(dt)
            if b is not None:
                b = (b.float() - shift) / safe
        if not self._had_bias:
            b = None
        return w, b

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
        if strict:
            for k in state_dict:
                if k.startswith(prefix) and "." not in k[len(prefix):] and k[len(prefix):] not in keys:
                    unexpected_keys.append(k)
        if "weight" not in vals:
            return
        w_now, b_now = self._public()
        w = vals["weight"].detach().clone()  # loading copies, as into a parameter
        if tuple(w.shape) != tuple(w_now.shape):
            error_msgs.append(f"size mismatch for {prefix}weight: copying a param with shape {tuple(w.shape)}, "
                              f"the shape in current model is {tuple(w_now.shape)}.")
            return
        b = vals["bias"].detach().clone() if "bias" in vals else b_now  # a missing bias keeps its value
        w = w.float() if self._bn is not None else w
        if self._bn is not None and self._bn.loads_after(self):
            # load_state_dict visits children in order and hands each only its own keys:
            # the folded batch norm refolds once its new statistics are in.
            self._bn.pending = (w, b)
        else:
            self._repack(w, b)


@torch.jit.unused
def _output_size_given_positionally(transposed: bool, other: Optional[Tensor], output_size: Optional[List[int]]
                                    ) -> Tuple[Optional[Tensor], Optional[List[int]]]:
    """A transposed convolution's second positional argument is stock's output_size."""
    if transposed and output_size is None and isinstance(other, (list, tuple)):
        return None, list(other)
    return other, output_size


@torch.jit.unused
def _as_operand(other):
    """A Python number as the second operand: the 0-d tensor that `y + number` behaves like."""
    return other if other is None or isinstance(other, Tensor) else torch.as_tensor(other)


def _transposed_output_padding(x: Tensor, output_size: List[int], nd: int, stride: List[int],
                               padding: List[int], kernel: List[int], dilation: List[int]) -> List[int]:
    """The output_padding that gives a transposed convolution of `x` the spatial `output_size`
    (which may also name the batch and channel sizes), checked like PyTorch checks it."""
    lead = 2 if x.dim() == nd + 2 else 1
    size = output_size[lead:] if len(output_size) == nd + lead else output_size
    if len(size) != nd:
        raise ValueError(f"ConvTranspose{nd}D: for {x.dim()}D input, output_size must have {nd} or {nd + lead} "
                         f"elements (got {len(output_size)})")
    lows: List[int] = []
    highs: List[int] = []
    for d in range(nd):
        low = (x.size(d + lead) - 1) * stride[d] - 2 * padding[d] + dilation[d] * (kernel[d] - 1) + 1
        lows.append(low)
        highs.append(low + stride[d] - 1)
    for d in range(nd):
        if size[d] < lows[d] or size[d] > highs[d]:
            raise ValueError(f"requested an output size of {size}, but valid sizes range from {lows} to {highs} "
                             f"(for an input of {x.size()[lead:]})")
    return [size[d] - lows[d] for d in range(nd)]


class PackedConv(_Packed):
    """Conv1d/2d/3d and ConvTranspose1d/2d/3d with a prepacked weight and fused post-ops."""
    _RUNNER = "ConvRunner"

    def __init__(self, conv, dtype=torch.float32, bn=None):
        super().__init__()
        self.transposed = isinstance(conv, nn.modules.conv._ConvTransposeNd)
        self._out_dim = 1 if self.transposed else 0
        nd = conv.weight.dim() - 2
        self._nd = nd
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.dilation = conv.kernel_size, conv.stride, conv.dilation
        self.groups, self.padding, self.padding_mode = conv.groups, conv.padding, conv.padding_mode
        self.output_padding = tuple(getattr(conv, "output_padding", (0,) * nd))
        # Non-zero padding modes pad explicitly, as nn.Conv does, then convolve unpadded.
        self._pad_mode = conv.padding_mode
        self._pad_amounts: List[int] = list(conv._reversed_padding_repeated_twice)
        if conv.padding_mode != "zeros":
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
        self._stride: List[int] = list(conv.stride)
        self._pad_l: List[int] = list(pl)
        self._pad_r: List[int] = list(pr)
        self._dilation: List[int] = list(conv.dilation)
        self._kernel: List[int] = list(conv.kernel_size)
        self._output_padding: List[int] = list(self.output_padding)
        # False: the output is contiguous, as stock's is for a contiguous input (the kernels
        # write channels-last); passes/free_layouts.py sets it where no code sees the layout.
        self.free_layout = False
        self._init_common(conv, dtype, bn)

    def _pack(self, weight, bias, output_padding=None):
        op = self._output_padding if output_padding is None else output_padding
        return ops().conv_prepack(weight, bias, self._stride, self._pad_l, self._pad_r, self._dilation, self.groups,
                                  self.transposed, op, self._dtype)

    def forward(self, input: Tensor, other: Optional[Tensor] = None, output_size: Optional[List[int]] = None) -> Tensor:
        if not torch.jit.is_scripting():
            other, output_size = _output_size_given_positionally(self.transposed, other, output_size)
        return self.run_fused(input, self._post_name, other, self._post_args, output_size)

    @torch.jit.export
    def run_fused(self, x: Tensor, post_op: str, other: Optional[Tensor] = None, args: Optional[List[float]] = None,
                  output_size: Optional[List[int]] = None) -> Tensor:
        """Runs with an explicit post-op chain (e.g. "badd+relu" with `other`). An unbatched
        input runs as a batch of one; a transposed convolution honours `output_size`."""
        self._check_not_training_folded()
        scalars: List[float] = [] if args is None else args
        if not torch.jit.is_scripting():
            other = _as_operand(other)
        ctx = self._ctx
        if output_size is not None and self.transposed:
            op = _transposed_output_padding(x, output_size, self._nd, self._stride, self._pad_l, self._kernel,
                                            self._dilation)
            if op != self._output_padding:
                ctx = self._variant(op)
        unbatched = x.dim() == self._nd + 1
        if unbatched:
            x = x.unsqueeze(0)
        if self._pad_mode != "zeros":
            x = F.pad(x, self._pad_amounts, mode=self._pad_mode)
        if torch.jit.is_scripting() or torch.jit.is_tracing() or ctx is not self._ctx:
            y = torch.ops.ipex.conv_run(x, ctx, post_op, scalars, other)
        else:
            y = self._runner_for_ctx().run(x, post_op, scalars, other)
        if not self.free_layout:
            y = y.contiguous()
        if unbatched and (other is None or other.dim() <= self._nd + 1):
            y = y.squeeze(0)
        return y

    def _variant(self, output_padding: List[int]) -> torch.classes.ipex.ConvContext:
        """The context for another output_padding (a transposed call with output_size)."""
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            w = self._ctx.weight()
            return torch.ops.ipex.conv_prepack(w, self._ctx.bias(), self._stride, self._pad_l, self._pad_r,
                                               self._dilation, self.groups, True, output_padding, w.dtype)
        return self._cached_variant(output_padding)

    @torch.jit.unused
    def _cached_variant(self, output_padding: List[int]) -> torch.classes.ipex.ConvContext:
        variants = self.__dict__.setdefault("_variants", {})  # str keys: TorchScript can type the dict
        key = ",".join(map(str, output_padding))
        if key not in variants:
            variants[key] = ops().conv_prepack(self._ctx.weight(), self._ctx.bias(), self._stride, self._pad_l,
                                               self._pad_r, self._dilation, self.groups, True, output_padding,
                                               self._dtype)
        return variants[key]

    def _repack(self, weight, bias):
        self.__dict__.pop("_variants", None)
        super()._repack(weight, bias)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"transposed={self.transposed}, post_op={self._post_name}, dtype={self._dtype}, "
                f"bn_folded={self._bn is not None}")


class PackedLinear(_Packed):
    """nn.Linear with a prepacked weight and fused post-ops."""
    _RUNNER = "LinearRunner"

    def __init__(self, linear, dtype=torch.float32, bn=None, row_scale=None):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self._init_common(linear, dtype, bn, row_scale)

    def _pack(self, weight, bias):
        # A copy that reads the layer's weight in place also takes a plain-layout kernel
        # over a packed copy where the CPU's fastest kernel wants one (AVX-512).
        return ops().linear_prepack(weight, bias, self._dtype, reads_weights_in_place())

    def forward(self, input: Tensor, other: Optional[Tensor] = None) -> Tensor:
        return self.run(input, self._post_name, self._post_args, other, None)

    @torch.jit.export
    def run(self, x: Tensor, post_op: str = "none", args: Optional[List[float]] = None,
            other: Optional[Tensor] = None, out_dtype: Optional[torch.dtype] = None) -> Tensor:
        """Runs with an explicit post-op chain; `out_dtype` may ask a bfloat16 layer for a
        float32 result."""
        self._check_not_training_folded()
        scalars: List[float] = [] if args is None else args
        if not torch.jit.is_scripting():
            other = _as_operand(other)
        if torch.jit.is_scripting() or torch.jit.is_tracing():
            return torch.ops.ipex.linear_run(x, self._ctx, post_op, scalars, other, out_dtype)
        return self._runner_for_ctx().run(x, post_op, scalars, other, out_dtype)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, post_op={self._post_name}, "
                f"dtype={self._dtype}, bn_folded={self._bn is not None}")
