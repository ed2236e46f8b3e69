"""Inference modules on prepacked oneDNN kernels, used by ipex.optimize()."""
from .folding import FoldedBatchNorm
from .packed import PackedConv, PackedLinear
from .transformer import PackedTransformerEncoderLayer

__all__ = ["FoldedBatchNorm", "PackedConv", "PackedLinear", "PackedTransformerEncoderLayer"]
