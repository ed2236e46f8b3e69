"""ipex.optimize(model, optimizer=...): the peer's training entry point.

None of the inference rewrites is exact under training: a batch norm folded into its
convolution stops tracking batch statistics and learning its own affine parameters, and the
packed kernels compute no gradients. So a model prepared for training keeps stock PyTorch
layers (bf16 comes from the user's torch.cpu.amp.autocast, with the float32 weights as master
copies) and the call only keeps the peer's contract: the model must be in training mode, the
result is (model, optimizer), and without inplace both are independent copies whose
optimizer steps the copy's parameters.
"""
import copy
import warnings

import torch


def prepare(model, optimizer, inplace):
    """`model` is an nn.Module (optimize() checked it)."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"ipex.optimize: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
    if not model.training:
        raise RuntimeError("ipex.optimize(optimizer=...) prepares training: call model.train() first "
                           "(without an optimizer it optimizes an eval-mode model for inference)")
    if not inplace:
        # One deepcopy for both, so that the copied optimizer's parameter groups and state
        # refer to the copied model's parameters, not the original's.
        model, optimizer = copy.deepcopy((model, optimizer))
    warnings.warn("ipex.optimize: training runs on stock PyTorch layers (the rewrites are for inference); "
                  "for bfloat16, run the training steps under torch.cpu.amp.autocast()", stacklevel=3)
    return model, optimizer
