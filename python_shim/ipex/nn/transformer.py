"""nn.TransformerEncoderLayer and nn.TransformerEncoder on prepacked oneDNN linears.

QKV, output projection and both feed-forward linears run as prepacked inner products; the
activation and both residual adds are fused into them, and the 1/sqrt(head_dim) scaling is
folded into the query rows of the packed QKV weight. State-dict keys are the original ones;
unbatched (S, E) inputs, masks, gradients (on PyTorch's ops), trace and script work as on the
stock modules.
"""
import math
from typing import Optional

import torch
from torch import Tensor, nn
import torch.nn.functional as F

from .packed import PackedLinear, reads_weights_in_place


def _activation_post_op(layer):
    act = layer.activation
    if act is F.relu or isinstance(act, nn.ReLU):
        return "relu"
    if act is F.gelu or (isinstance(act, nn.GELU) and act.approximate == "none"):
        return "gelu_erf"
    if isinstance(act, nn.GELU) and act.approximate == "tanh":
        return "gelu_tanh"
    return None


def can_pack(layer):
    if type(layer) is not nn.TransformerEncoderLayer:
        return False
    attn = layer.self_attn
    biased = all(m.bias is not None for m in (attn.out_proj, layer.linear1, layer.linear2))
    return (attn._qkv_same_embed_dim and attn.in_proj_bias is not None and biased
            and attn.in_proj_weight.dtype in (torch.float32, torch.bfloat16)
            and attn.bias_k is None and attn.bias_v is None and not attn.add_zero_attn
            and _activation_post_op(layer) is not None)


class _BiasedLinear(PackedLinear):
    """A packed linear that has a bias, as every linear of an encoder layer does; typed so for
    TorchScript (nn.TransformerEncoder's scripted forward reads the biases as tensors)."""

    @property
    def bias(self) -> Tensor:
        b = self._public()[1]
        assert b is not None
        return b


class _InProj(_BiasedLinear):
    """The packed QKV projection. Its state lives under MultiheadAttention's own keys
    (in_proj_weight, in_proj_bias), which _SelfAttention writes and reads: it adds none."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        pass

    def _load_from_state_dict(self, *args, **kwargs):
        pass


_IN_PROJ_KEYS = ("in_proj_weight", "in_proj_bias")


class _SelfAttention(nn.Module):
    """MultiheadAttention's self-attention (query = key = value) on packed projections."""

    def __init__(self, attn, dtype):
        super().__init__()
        self.embed_dim, self.num_heads, self.batch_first = attn.embed_dim, attn.num_heads, attn.batch_first
        self.head_dim = self.embed_dim // self.num_heads
        # The scores' 1/sqrt(head_dim) is folded into the query rows of the packed QKV weight,
        # unless the layer reads the model's weight where it is (reading_weights_in_place):
        # then that weight stays as it is and the scores are scaled instead.
        scale = torch.ones(3 * self.embed_dim)
        scale[: self.embed_dim] = 1.0 / math.sqrt(self.head_dim)
        self.score_scale = float(scale[0]) if reads_weights_in_place() else 1.0
        proxy = nn.Linear(self.embed_dim, 3 * self.embed_dim, device="meta")  # no weight of its own
        proxy.weight, proxy.bias = attn.in_proj_weight, attn.in_proj_bias
        self.in_proj = _InProj(proxy, dtype, row_scale=None if reads_weights_in_place() else scale)
        self.out_proj = _BiasedLinear(attn.out_proj, dtype)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        w, b = self.in_proj._public()
        destination[prefix + "in_proj_weight"] = w
        destination[prefix + "in_proj_bias"] = b

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        inner = prefix + "in_proj."
        renamed = {inner + k[len("in_proj_"):]: state_dict[prefix + k] for k in _IN_PROJ_KEYS
                   if prefix + k in state_dict}
        missing = []
        PackedLinear._load_from_state_dict(self.in_proj, renamed, inner, local_metadata, False, missing, [],
                                           error_msgs)
        missing_keys.extend(prefix + "in_proj_" + k[len(inner):] for k in missing)
        if strict:
            own = set(_IN_PROJ_KEYS) | set(self._modules)
            unexpected_keys.extend(k for k in state_dict if k.startswith(prefix)
                                   and k[len(prefix):].split(".", 1)[0] not in own)

    @property
    def in_proj_weight(self) -> Tensor:
        return self.in_proj.weight

    @property
    def in_proj_bias(self) -> Tensor:
        return self.in_proj.bias

    @torch.jit.export
    def attend(self, x: Tensor, mask: Optional[Tensor], exact: bool) -> Tensor:
        """Heads' softmax(q k^T + mask) v for x (batch-first or not), before out_proj.
        `exact`: on PyTorch's ops (which record gradients) instead of the oneDNN ones."""
        qkv = self.in_proj(x)
        h, d = self.num_heads, self.head_dim
        if self.batch_first:
            b, s = qkv.size(0), qkv.size(1)
            heads = qkv.view(b, s, 3, h, d).permute(2, 0, 3, 1, 4)
        else:
            s, b = qkv.size(0), qkv.size(1)
            heads = qkv.view(s, b, 3, h, d).permute(2, 1, 3, 0, 4)
        q, k, v = heads[0], heads[1], heads[2]
        if exact:
            scores = torch.matmul(q, k.transpose(-1, -2))
            if self.score_scale != 1.0:
                scores = scores * self.score_scale
            if mask is not None:
                scores = scores + mask.to(scores.dtype)
            out = torch.matmul(torch.softmax(scores, -1), v)  # (b, h, s, d)
            out = out.permute(0, 2, 1, 3) if self.batch_first else out.permute(2, 0, 1, 3)
            return out.reshape(qkv.size(0), qkv.size(1), self.embed_dim)
        # oneDNN batched matmuls read q, k^T and v as strided views of the QKV output and write
        # the heads straight into the (batch, seq, embed) layout; softmax runs in place.
        scores = torch.ops.ipex.batch_matmul(q, k.transpose(-1, -2), self.score_scale, None)
        if mask is not None:
            scores += mask.to(scores.dtype)
        probs = torch.ops.ipex.softmax_(scores)
        if self.batch_first:
            out = torch.empty(b, s, h, d, dtype=qkv.dtype)
            torch.ops.ipex.batch_matmul(probs, v, 1.0, out.permute(0, 2, 1, 3))
            return out.view(b, s, self.embed_dim)
        out = torch.empty(s, b, h, d, dtype=qkv.dtype)
        torch.ops.ipex.batch_matmul(probs, v, 1.0, out.permute(1, 2, 0, 3))
        return out.view(s, b, self.embed_dim)


def _as_bool_or_float(mask: Tensor, what: str) -> Tensor:
    if mask.dtype == torch.uint8:
        return mask.to(torch.bool)  # deprecated by PyTorch, still accepted
    if mask.dtype != torch.bool and not torch.is_floating_point(mask):
        raise AssertionError(f"only bool and floating types of {what} are supported")
    return mask


def _additive(mask: Tensor) -> Tensor:
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=torch.float32).masked_fill_(mask, float("-inf"))
    return mask.float()


def _additive_mask(attn_mask: Optional[Tensor], key_padding_mask: Optional[Tensor], batch: int, heads: int,
                   seq: int) -> Optional[Tensor]:
    """attn_mask ((S, S) or (N*H, S, S)) and key_padding_mask ((N, S)), bool (True = masked)
    or float (added), as one float mask that broadcasts over (N, H, S, S)."""
    mask: Optional[Tensor] = None
    if attn_mask is not None:
        m = _additive(_as_bool_or_float(attn_mask, "attn_mask"))
        mask = m.view(batch, heads, seq, seq) if m.dim() == 3 else m
    if key_padding_mask is not None:
        k = _additive(_as_bool_or_float(key_padding_mask, "key_padding_mask")).view(batch, 1, 1, seq)
        mask = k if mask is None else mask + k
    return mask


def _layer_norm(x: Tensor, weight: Optional[Tensor], bias: Optional[Tensor], eps: float, exact: bool) -> Tensor:
    """Layer norm over the last dimension, in float32 (or float64 for float64 inputs)."""
    if exact:
        return F.layer_norm(x.to(torch.promote_types(x.dtype, torch.float32)), [x.size(-1)], weight, bias, eps)
    # oneDNN's layer norm: ~2.5x faster than PyTorch's float32 one here.
    return torch.ops.ipex.layer_norm(x.float(), weight, bias, eps)


_stock_layer_type_known = False


class PackedTransformerEncoderLayer(nn.Module):
    """nn.TransformerEncoderLayer (self-attention, packed linears, fused residual adds)."""

    def __prepare_scriptable__(self):
        # nn.TransformerEncoder's forward tests isinstance(layer, nn.TransformerEncoderLayer);
        # TorchScript resolves that class name only once it has compiled the class itself.
        global _stock_layer_type_known
        if not _stock_layer_type_known:
            torch.jit.script(nn.TransformerEncoderLayer(2, 1, 2, 0.0))
            _stock_layer_type_known = True
        return self

    def __init__(self, layer, dtype=torch.float32):
        super().__init__()
        self.self_attn = _SelfAttention(layer.self_attn, dtype)
        self.linear1 = _BiasedLinear(layer.linear1, dtype)
        self.linear1.fuse_activation(_activation_post_op(layer), [])
        self.linear2 = _BiasedLinear(layer.linear2, dtype)
        self.norm1, self.norm2 = layer.norm1, layer.norm2
        self.norm_first = layer.norm_first
        self.batch_first = layer.self_attn.batch_first
        self.train(layer.training)

    def _norm1(self, x: Tensor, exact: bool) -> Tensor:
        return _layer_norm(x, self.norm1.weight, self.norm1.bias, self.norm1.eps, exact)

    def _norm2(self, x: Tensor, exact: bool) -> Tensor:
        return _layer_norm(x, self.norm2.weight, self.norm2.bias, self.norm2.eps, exact)

    def forward(self, src: Tensor, src_mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        # An unbatched (S, E) sequence runs as a batch of one.
        unbatched = src.dim() == 2
        x = src.unsqueeze(0 if self.batch_first else 1) if unbatched else src
        kpm = src_key_padding_mask
        if unbatched and kpm is not None:
            kpm = kpm.unsqueeze(0)
        if self.batch_first:
            batch, seq = x.size(0), x.size(1)
        else:
            seq, batch = x.size(0), x.size(1)
        mask = _additive_mask(src_mask, kpm, batch, self.self_attn.num_heads, seq)
        # PyTorch's ops where gradients are wanted or the oneDNN ones cannot take the dtype
        # (a model moved to float64).
        exact = (torch.is_grad_enabled() and x.requires_grad) or x.dtype not in (torch.float32, torch.bfloat16)
        # The residual stream and layer norms stay float32 (bf16 layers write float32 there):
        # more accurate, and no slower.
        rs = torch.promote_types(x.dtype, torch.float32)
        if self.norm_first:
            h = self._norm1(x, exact)
            x = self.self_attn.out_proj.run(self.self_attn.attend(h, mask, exact), "badd", [], x, rs)
            h = self._norm2(x, exact)
            y = self.linear2.run(self.linear1(h), "badd", [], x, rs)
        else:
            x = self._norm1(self.self_attn.out_proj.run(self.self_attn.attend(x, mask, exact), "badd", [], x, rs), exact)
            y = self._norm2(self.linear2.run(self.linear1(x), "badd", [], x, rs), exact)
        y = y.to(src.dtype)  # a bfloat16 model answers in bfloat16, as the stock layer does
        return y.squeeze(0 if self.batch_first else 1) if unbatched else y


def can_pack_encoder(encoder):
    return type(encoder) is nn.TransformerEncoder and all(can_pack(layer) for layer in encoder.layers)


class PackedTransformerEncoder(nn.Module):
    """nn.TransformerEncoder over packed layers, with stock's results also where torch 1.13
    runs a padded batch as a nested tensor (batch-first post-norm layers, a key padding mask,
    no gradients): its padded positions come out as zeros and the sequence is cut to the
    longest unpadded one, as there."""

    def __init__(self, encoder, dtype=torch.float32):
        super().__init__()
        self.layers = nn.ModuleList([PackedTransformerEncoderLayer(layer, dtype) for layer in encoder.layers])
        self.train(encoder.training)
        self.num_layers = encoder.num_layers
        self.norm = encoder.norm
        self.enable_nested_tensor = encoder.enable_nested_tensor
        self.mask_check = getattr(encoder, "mask_check", True)
        first = encoder.layers[0]
        attn = first.self_attn
        # The input-independent conditions of stock's nested-tensor path.
        self._nested_layers = bool(not first.norm_first and attn.batch_first and attn._qkv_same_embed_dim
                                   and first.activation_relu_or_gelu and first.norm1.eps == first.norm2.eps
                                   and attn.num_heads % 2 == 0)
        self._weights_want_grad = any(p.requires_grad for p in first.parameters())

    def forward(self, src: Tensor, mask: Optional[Tensor] = None, src_key_padding_mask: Optional[Tensor] = None) -> Tensor:
        kpm = src_key_padding_mask
        if kpm is not None and kpm.dtype != torch.bool and not torch.is_floating_point(kpm):
            raise AssertionError("only bool and floating types of key_padding_mask are supported")
        nested = (self._nested_layers and not self.training and src.dim() == 3 and self.enable_nested_tensor
                  and kpm is not None and mask is None and not torch.is_autocast_enabled()
                  and not (torch.is_grad_enabled() and (self._weights_want_grad or src.requires_grad)))
        lengths: Optional[Tensor] = None
        if nested and kpm is not None:
            keep = kpm.logical_not()
            if self.mask_check and not torch._nested_tensor_from_mask_left_aligned(src, keep):
                nested = False
            else:
                lengths = keep.sum(1)
                # the layers see exactly the kept prefix of each sequence
                kpm = torch.arange(src.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)
        output = src
        for layer in self.layers:
            output = layer(output, mask, kpm)
        if lengths is not None:
            longest = int(lengths.max())
            kept = torch.arange(longest).unsqueeze(0) < lengths.unsqueeze(1)
            output = output[:, :longest].masked_fill(kept.logical_not().unsqueeze(-1), 0.0)
        if self.norm is not None:
            output = self.norm(output)
        return output
