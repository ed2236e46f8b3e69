"""Inference modules on prepacked oneDNN kernels, used by ipex.optimize()."""
from .batch_tiling import BatchTiled
from .folding import FoldedBatchNorm
from .packed import PackedConv, PackedLinear
from .transformer import PackedTransformerEncoder, PackedTransformerEncoderLayer

__all__ = ["BatchTiled", "FoldedBatchNorm", "PackedConv", "PackedLinear", "PackedTransformerEncoder", "PackedTransformerEncoderLayer"]
