"""nn.TransformerEncoderLayer on prepacked oneDNN linears.

QKV, output projection and both feed-forward linears run as prepacked inner products; the
activation and both residual adds are fused into them, and the 1/sqrt(head_dim) scaling is
folded into the query rows of the packed QKV weight. State-dict keys are the original ones.
"""
import math

import torch
from torch import nn
import torch.nn.functional as F

from .._kernels import ops
from .packed import PackedLinear


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
    attn = layer.self_attn
    return (type(layer) is nn.TransformerEncoderLayer and attn._qkv_same_embed_dim and attn.in_proj_bias is not None
            and attn.bias_k is None and attn.bias_v is None and not attn.add_zero_attn
            and _activation_post_op(layer) is not None)


class _InProj(PackedLinear):
    """The packed QKV projection, saved under MultiheadAttention's in_proj_* keys."""

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        w, b = self._public()
        destination[prefix + "in_proj_weight"] = w
        destination[prefix + "in_proj_bias"] = b

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        renamed = {prefix + k: state_dict[prefix + "in_proj_" + k] for k in ("weight", "bias")
                   if prefix + "in_proj_" + k in state_dict}
        super()._load_from_state_dict(renamed, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class _SelfAttention(nn.Module):
    def __init__(self, attn, dtype):
        super().__init__()
        self.embed_dim, self.num_heads, self.batch_first = attn.embed_dim, attn.num_heads, attn.batch_first
        self.head_dim = self.embed_dim // self.num_heads
        scale = torch.ones(3 * self.embed_dim)
        scale[: self.embed_dim] = 1.0 / math.sqrt(self.head_dim)
        proxy = nn.Linear(self.embed_dim, 3 * self.embed_dim)
        proxy.weight, proxy.bias = attn.in_proj_weight, attn.in_proj_bias
        # The packed QKV module is stored unregistered: its state goes under our own prefix.
        object.__setattr__(self, "in_proj", _InProj(proxy, dtype, row_scale=scale))
        self.out_proj = PackedLinear(attn.out_proj, dtype)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.in_proj._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, *args):
        self.in_proj._load_from_state_dict(state_dict, prefix, *args)

    @property
    def in_proj_weight(self):
        return self.in_proj.weight

    @property
    def in_proj_bias(self):
        return self.in_proj.bias

    def attend(self, x, mask):
        """Heads' softmax(q k^T + mask) v for x (batch-first or not), before out_proj."""
        qkv = self.in_proj(x)
        if self.batch_first:
            b, s, _ = qkv.shape
            q, k, v = qkv.view(b, s, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        else:
            s, b, _ = qkv.shape
            q, k, v = qkv.view(s, b, 3, self.num_heads, self.head_dim).permute(2, 1, 3, 0, 4)
        # oneDNN batched matmuls read q, k^T and v as strided views of the QKV output and write
        # the heads straight into the (batch, seq, embed) layout; softmax runs in place.
        scores = ops().batch_matmul(q, k.transpose(-1, -2))
        if mask is not None:
            scores += mask.to(scores.dtype)
        probs = ops().softmax_(scores)
        if self.batch_first:
            out = torch.empty(b, s, self.num_heads, self.head_dim, dtype=qkv.dtype)
            ops().batch_matmul(probs, v, 1.0, out.permute(0, 2, 1, 3))
            return out.view(b, s, self.embed_dim)
        out = torch.empty(s, b, self.num_heads, self.head_dim, dtype=qkv.dtype)
        ops().batch_matmul(probs, v, 1.0, out.permute(1, 2, 0, 3))
        return out.view(s, b, self.embed_dim)


def _additive_mask(attn_mask, key_padding_mask, batch, heads, seq, dtype):
    mask = None
    if attn_mask is not None:
        m = attn_mask
        if m.dtype == torch.bool:
            m = torch.zeros(m.shape, dtype=dtype).masked_fill_(m, float("-inf"))
        mask = m.view(batch, heads, seq, seq) if m.dim() == 3 else m
    if key_padding_mask is not None:
        k = key_padding_mask
        if k.dtype == torch.bool:
            k = torch.zeros(k.shape, dtype=dtype).masked_fill_(k, float("-inf"))
        k = k.view(batch, 1, 1, seq)
        mask = k if mask is None else mask + k
    return mask


class PackedTransformerEncoderLayer(nn.Module):
    def __init__(self, layer, dtype=torch.float32):
        super().__init__()
        self.self_attn = _SelfAttention(layer.self_attn, dtype)
        self.linear1 = PackedLinear(layer.linear1, dtype)
        self.linear1.fuse_activation(_activation_post_op(layer), [])
        self.linear2 = PackedLinear(layer.linear2, dtype)
        self.norm1, self.norm2 = layer.norm1, layer.norm2
        self.norm_first = layer.norm_first
        self.batch_first = layer.self_attn.batch_first

    def _norm(self, norm, x):
        # oneDNN's layer norm: ~2.5x faster than PyTorch's float32 one here.
        return ops().layer_norm(x.float(), norm.weight, norm.bias, norm.eps)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = src
        if self.batch_first:
            batch, seq = x.shape[0], x.shape[1]
        else:
            seq, batch = x.shape[0], x.shape[1]
        mask = _additive_mask(src_mask, src_key_padding_mask, batch, self.self_attn.num_heads, seq,
                              torch.float32)
        attn, ff1, ff2 = self.self_attn, self.linear1, self.linear2
        # The residual stream and layer norms stay float32 (bf16 layers write float32 there):
        # more accurate, and no slower.
        rs = torch.float32
        if self.norm_first:
            h = self._norm(self.norm1, x)
            x = attn.out_proj.run(attn.attend(h, mask), "badd", (), x, rs)
            h = self._norm(self.norm2, x)
            return ff2.run(ff1(h), "badd", (), x, rs)
        x = self._norm(self.norm1, attn.out_proj.run(attn.attend(x, mask), "badd", (), x, rs))
        return self._norm(self.norm2, ff2.run(ff1(x), "badd", (), x, rs))
