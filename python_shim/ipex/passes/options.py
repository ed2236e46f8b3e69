"""ipex.optimize()'s options, resolved once: the level's defaults, then the flags given."""
import warnings
from dataclasses import dataclass, fields, replace
from typing import Any, Optional, Union

import torch

LEVELS = {
    "O0": dict(conv_bn_folding=False, linear_bn_folding=False, weights_prepack=False,
               replace_dropout_with_identity=False, graph_mode=False),
    "O1": dict(conv_bn_folding=True, linear_bn_folding=True, weights_prepack=True,
               replace_dropout_with_identity=True, graph_mode=False),
}


@dataclass(frozen=True)
class Options:
    dtype: torch.dtype = torch.float32
    level: str = "O1"
    inplace: bool = False
    conv_bn_folding: bool = True
    linear_bn_folding: bool = True
    weights_prepack: bool = True
    replace_dropout_with_identity: bool = True
    graph_mode: bool = False
    sample_input: Any = None
    batch_tiling: Union[None, bool, int] = None  # None: measured (graph mode only); int: fixed slices
    # Packed layers may read the original's weights where they are (frontend.sharing_weights:
    # the caller rebuilds on any change); otherwise they get copies of their own.
    share_weights: bool = False

    def but(self, **changes):
        return replace(self, **changes)


def check_level_and_dtype(level, dtype):
    if level not in LEVELS:
        raise ValueError(f"ipex.optimize: level must be 'O0' or 'O1', got {level!r}")
    if dtype not in (None, torch.float32, torch.bfloat16):
        raise ValueError(f"ipex.optimize: dtype must be None, torch.float32 or torch.bfloat16, got {dtype}")


def resolve(level, dtype, inplace, sample_input, batch_tiling, **flags):
    """Options from optimize()'s arguments; flags left None take the level's value."""
    check_level_and_dtype(level, dtype)
    if batch_tiling is not None and batch_tiling is not True and batch_tiling is not False and (
            not isinstance(batch_tiling, int) or batch_tiling < 1):
        raise ValueError(f"ipex.optimize: batch_tiling must be None, False or a slice size >= 1, got {batch_tiling!r}")
    values = dict(LEVELS[level])
    names = {f.name for f in fields(Options)}
    for key, value in flags.items():
        assert key in names, key
        if value is not None:
            values[key] = bool(value)
    if values["graph_mode"] and sample_input is None:
        # The peer traces at the first call; here the trace is checked against sample_input
        # before it is trusted, so without one the eager passes are the exact choice.
        warnings.warn("ipex.optimize(graph_mode=True) without sample_input: graph mode needs an input to trace "
                      "and check, so the eager rewrites are used", stacklevel=3)
        values["graph_mode"] = False
    return Options(dtype=dtype or torch.float32, level=level, inplace=bool(inplace), sample_input=sample_input,
                   batch_tiling=None if batch_tiling is True else batch_tiling, **values)


def folding_wanted(opts: Options, kind: Optional[str] = None):
    if kind == "linear":
        return opts.linear_bn_folding
    if kind == "conv":
        return opts.conv_bn_folding
    return opts.conv_bn_folding or opts.linear_bn_folding
