"""The nn.Module configurations PyTorch's own test suite runs (torch.testing._internal's
module_db) for the layers ipex packs, plus a table of our own for what module_db leaves out
(padding modes, groups, dilation, output_padding, strided and channels-last inputs).

module_db needs `expecttest`, a test-only PyPI package Debian does not ship; where it is
missing a stand-in with the two names common_utils reads is installed first.
"""
import sys
import types
import unittest

import torch
from torch import nn

PACKED_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                nn.Linear, nn.TransformerEncoderLayer, nn.Transformer)


def _module_db():
    try:
        import expecttest  # noqa: F401
    except ImportError:
        stand_in = types.ModuleType("expecttest")
        stand_in.TestCase, stand_in.ACCEPT = unittest.TestCase, False
        sys.modules["expecttest"] = stand_in
    try:
        from torch.testing._internal.common_modules import module_db
    except Exception:  # noqa: BLE001  (any import problem: use our table only)
        return []
    return [info for info in module_db if info.module_cls in PACKED_TYPES]


class Case:
    """One module configuration: how to build it, its forward args and kwargs."""

    def __init__(self, name, make, args, kwargs=None):
        self.name, self.make, self.args, self.kwargs = name, make, args, kwargs or {}

    def __repr__(self):
        return self.name


def _from_module_db():
    cases = []
    for info in _module_db():
        for i, mi in enumerate(info.module_inputs_func(info, device="cpu", dtype=torch.float32, requires_grad=False,
                                                      training=False)):
            ctor = mi.constructor_input

            def make(cls=info.module_cls, a=ctor.args, k=ctor.kwargs):
                return cls(*a, **k)

            name = f"module_db:{info.module_cls.__name__}:{i}:{mi.desc}"
            cases.append(Case(name, make, mi.forward_input.args, mi.forward_input.kwargs))
    return cases


def _own_table():
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    cl = torch.channels_last
    table = [
        ("conv1d_groups_dilation", lambda: nn.Conv1d(6, 9, 5, stride=2, padding=3, dilation=2, groups=3), r(3, 6, 17)),
        ("conv1d_same_reflect", lambda: nn.Conv1d(4, 4, 4, padding="same", padding_mode="reflect"), r(2, 4, 9)),
        ("conv1d_circular", lambda: nn.Conv1d(4, 3, 3, padding=2, padding_mode="circular"), r(2, 4, 9)),
        ("conv1d_unbatched_replicate", lambda: nn.Conv1d(4, 3, 3, padding=1, padding_mode="replicate"), r(4, 9)),
        ("conv2d_asym", lambda: nn.Conv2d(6, 8, (3, 5), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2),
         r(3, 6, 13, 11)),
        ("conv2d_depthwise_nobias", lambda: nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), r(5, 8, 7, 7)),
        ("conv2d_same_even_kernel", lambda: nn.Conv2d(4, 5, 4, padding="same", dilation=2), r(1, 4, 9, 8)),
        ("conv2d_valid", lambda: nn.Conv2d(4, 5, 3, padding="valid"), r(2, 4, 6, 6)),
        ("conv2d_reflect", lambda: nn.Conv2d(4, 5, 3, padding=2, padding_mode="reflect"), r(1, 4, 7, 9)),
        ("conv2d_replicate_unbatched", lambda: nn.Conv2d(4, 5, 3, padding=1, padding_mode="replicate"), r(4, 7, 5)),
        ("conv2d_circular", lambda: nn.Conv2d(4, 5, 3, padding=1, padding_mode="circular"), r(1, 4, 6, 6)),
        ("conv2d_channels_last", lambda: nn.Conv2d(4, 6, 3, padding=1), r(2, 4, 6, 5).contiguous(memory_format=cl)),
        ("conv2d_strided_input", lambda: nn.Conv2d(4, 6, 1), r(2, 4, 12, 10)[:, :, ::2, 1::3]),
        ("conv2d_empty_batch", lambda: nn.Conv2d(4, 6, 3), r(0, 4, 6, 6)),
        ("conv3d_groups", lambda: nn.Conv3d(4, 6, (1, 3, 3), stride=(1, 2, 2), groups=2, dilation=(1, 2, 1)),
         r(3, 4, 3, 9, 8)),
        ("conv3d_unbatched_same", lambda: nn.Conv3d(3, 4, 3, padding="same"), r(3, 4, 5, 6)),
        ("convT1d_output_padding", lambda: nn.ConvTranspose1d(4, 6, 3, stride=2, padding=1, output_padding=1),
         r(3, 4, 7)),
        ("convT2d_groups", lambda: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2),
         r(1, 4, 5, 6)),
        ("convT2d_dilation", lambda: nn.ConvTranspose2d(3, 5, (4, 3), stride=(2, 3), dilation=(1, 2)), r(3, 3, 4, 5)),
        ("convT2d_unbatched", lambda: nn.ConvTranspose2d(3, 5, 3, stride=2), r(3, 4, 5)),
        # padding - output_padding + stride <= 0: no oneDNN form, the stock computation runs
        ("convT2d_no_onednn_form", lambda: nn.ConvTranspose2d(2, 3, 3, stride=1, padding=0, output_padding=2,
                                                              dilation=3), r(1, 2, 4, 4)),
        ("convT3d", lambda: nn.ConvTranspose3d(4, 4, 3, stride=2, padding=1), r(1, 4, 3, 4, 5)),
        ("linear_3d", lambda: nn.Linear(7, 5), r(2, 3, 7)),
        ("linear_1d", lambda: nn.Linear(7, 5, bias=False), r(7)),
        ("linear_transposed_input", lambda: nn.Linear(6, 4), r(6, 9).t()),
        ("linear_empty", lambda: nn.Linear(6, 4), r(0, 6)),
    ]
    return [Case(name, make, (x,)) for name, make, x in table]


def all_cases():
    return _from_module_db() + _own_table()
