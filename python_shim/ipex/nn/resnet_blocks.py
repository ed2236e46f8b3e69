"""Fused forward for torchvision's ResNet blocks (exact types only).

A block whose convs are already packed (BN folded) runs conv+ReLU as one kernel and the
last conv with the residual add and ReLU fused as a oneDNN binary post-op (the residual is
read, never written, so callers holding the block's input are safe).
"""
from torch import nn

from .folding import FoldedBatchNorm
from .packed import PackedConv

try:
    from torchvision.models.resnet import BasicBlock, Bottleneck
except ImportError:  # torchvision is optional
    BasicBlock = Bottleneck = None


def _packed(m):
    return isinstance(m, PackedConv) and m.post_op[0] == "none"


def _folded(m):
    return isinstance(m, (FoldedBatchNorm, nn.Identity))


def _downsample_ok(ds):
    if ds is None:
        return True
    mods = list(ds.children()) if isinstance(ds, nn.Sequential) else [ds]
    return len(mods) >= 1 and _packed(mods[0]) and all(_folded(m) for m in mods[1:])


def _is_block(m):
    return (BasicBlock is not None and type(m) in (BasicBlock, Bottleneck) and isinstance(m.relu, nn.ReLU)
            and _downsample_ok(m.downsample))


def fuse_resnet_blocks(model):
    """Rewrites torchvision Bottleneck/BasicBlock forwards in place; returns the count."""
    count = 0
    for m in model.modules():
        if not _is_block(m):
            continue
        names = ["conv1", "conv2", "conv3"] if type(m) is Bottleneck else ["conv1", "conv2"]
        bns = ["bn" + n[-1] for n in names]
        if not all(_packed(getattr(m, n)) for n in names) or not all(_folded(getattr(m, b)) for b in bns):
            continue
        convs = [getattr(m, n) for n in names]
        for c in convs[:-1]:
            c.fuse_activation("relu", [])
        last = convs[-1]
        ds = m.downsample

        def forward(x, convs=convs, last=last, ds=ds):
            out = x
            for c in convs[:-1]:
                out = c(out)
            identity = x if ds is None else ds(x)
            return last.run_fused(out, "badd+relu", identity)

        # An instance attribute shadows the class's forward only for this block.
        m.forward = forward
        count += 1
    return count
