"""Batch tiling: a large batch runs through the whole model a slice at a time.

Layer by layer, a convolutional network at batch 16 streams every activation through
memory (ResNet-50's first stages hold ~3 MB per image); a slice of a few images keeps them
in cache from one layer to the next, and is over twice as fast here. It is only done where
it cannot change a result: the model's traced graph must consist of operations that treat
every sample on its own (convolutions, pooling, elementwise, flatten from dim 1, ...), with
one tensor in and one tensor out. The slice size is measured on the first batch of each
size, not guessed: cache sizes reported inside VMs are often wrong (508 MB of L3 here).
"""
import time

import torch

# Operations that compute each sample of dim 0 from that sample alone (given that no
# argument is another batch-sized tensor, which the constant check below sees to).
_PER_SAMPLE = {
    "aten::_convolution", "aten::conv1d", "aten::conv2d", "aten::conv3d", "aten::conv_transpose1d",
    "aten::conv_transpose2d", "aten::conv_transpose3d", "aten::linear", "aten::batch_norm",
    "aten::relu", "aten::relu_", "aten::gelu", "aten::silu", "aten::silu_", "aten::sigmoid", "aten::tanh",
    "aten::hardswish", "aten::hardswish_", "aten::hardsigmoid", "aten::hardsigmoid_", "aten::leaky_relu",
    "aten::leaky_relu_", "aten::elu", "aten::clamp", "aten::clamp_", "aten::hardtanh", "aten::hardtanh_",
    "aten::relu6", "aten::mish", "aten::dropout", "aten::max_pool1d", "aten::max_pool2d", "aten::max_pool3d",
    "aten::avg_pool1d", "aten::avg_pool2d", "aten::avg_pool3d", "aten::adaptive_avg_pool1d",
    "aten::adaptive_avg_pool2d", "aten::adaptive_avg_pool3d", "aten::adaptive_max_pool2d",
    "aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::sub", "aten::div", "aten::contiguous",
    "prim::Constant", "prim::ListConstruct",
}
_ELEMENTWISE = {"aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::sub", "aten::div"}
# Per sample only with a dim argument that is not 0: (position of that argument).
_DIM_ARGUMENT = {"aten::flatten": 1, "aten::softmax": 1, "aten::log_softmax": 1}


def _constant_is_per_sample(value):
    """A constant tensor operand is fine unless it could carry one entry per sample."""
    t = value.toIValue()
    return not isinstance(t, torch.Tensor) or t.dim() <= 1 or t.size(0) == 1


def is_batch_independent(model, sample):
    """True where `model(sample)` provably treats each sample of dim 0 on its own."""
    if not isinstance(sample, torch.Tensor) or sample.dim() < 2:
        return False
    try:
        with torch.no_grad():
            graph = torch.jit.freeze(torch.jit.trace(model, (sample,), check_trace=False)).graph
    except Exception:  # untraceable models are simply not tiled
        return False
    outputs = list(graph.outputs())
    if len(outputs) != 1 or not isinstance(outputs[0].type(), torch._C.TensorType):
        return False
    # Values computed from the input carry the batch; everything else must be per-sample
    # by shape (a constant without one row per sample), and may only meet the batch in
    # elementwise operations: a batch-derived weight or pooling size would mix samples.
    from_input = {v.unique() for v in graph.inputs()}
    for node in graph.nodes():
        kind = node.kind()
        inputs = list(node.inputs())
        batch_args = [i for i, v in enumerate(inputs) if v.unique() in from_input]
        if kind in _DIM_ARGUMENT:
            # Frozen graphs often lack ranks: a negative dim could then mean dim 0.
            dim = inputs[_DIM_ARGUMENT[kind]].toIValue() if inputs[_DIM_ARGUMENT[kind]].node().kind() == \
                "prim::Constant" else None
            if not isinstance(dim, int) or dim < 1 or batch_args != [0]:
                return False
        elif kind not in _PER_SAMPLE or list(node.blocks()):
            return False
        elif kind in _ELEMENTWISE:
            for i, v in enumerate(inputs):
                if i not in batch_args and isinstance(v.type(), torch._C.TensorType) and (
                        v.node().kind() != "prim::Constant" or not _constant_is_per_sample(v)):
                    return False
        elif batch_args not in ([], [0]):
            return False
        if batch_args:
            from_input.update(v.unique() for v in node.outputs())
    return outputs[0].unique() in from_input


def _run_tiled(forward, x, tile):
    if tile is None or x.size(0) <= tile:
        return forward(x)
    return torch.cat([forward(part) for part in x.split(tile)])


def _seconds(fn, x, runs=1):
    fn(x)  # first call of a shape: graph profiling / primitive creation
    fn(x)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - start)
    return best


def measure_tile(forward, batch, gain=0.9):
    """The slice size that runs `batch` fastest, halving from the whole batch while that keeps
    paying; None when no slice beats the whole batch by at least 1 - `gain`."""
    with torch.no_grad():
        whole = best_time = _seconds(forward, batch)
        best_tile, tile = None, batch.size(0) // 2
        while tile >= 1:
            t = _seconds(lambda x: _run_tiled(forward, x, tile), batch)
            if t >= best_time:
                break
            best_time, best_tile = t, tile
            tile //= 2
    return best_tile if best_tile is not None and best_time < gain * whole else None


class BatchTiled(torch.nn.Module):
    """Runs `inner` (a frozen TorchScript module, or an eager model on request) on slices of
    the batch. With a fixed `tile` always that size; otherwise the first batch of each size
    >= `min_batch` is measured (a few extra runs of it, once) and its best slice size kept.
    state_dict()/load_state_dict() are inner's own, under its keys."""

    def __init__(self, inner, tile=None, min_batch=4):
        super().__init__()
        self.inner = inner
        self.fixed = tile
        self.min_batch = min_batch
        self.chosen = {}  # batch size -> slice size, None = whole batch

    def tile_for(self, x):
        if self.fixed is not None:
            return self.fixed
        n = x.size(0)
        if n < self.min_batch:
            return None
        if n not in self.chosen:
            self.chosen[n] = measure_tile(self.inner, x)
        return self.chosen[n]

    def forward(self, x):
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            return self.inner(x)
        return _run_tiled(self.inner, x, self.tile_for(x))

    def graph_for(self, x):
        """The optimised graph of the inner TorchScript module (for one slice)."""
        return self.inner.graph_for(x[: self.tile_for(x) or x.size(0)])

    def state_dict(self, *args, **kwargs):
        return self.inner.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True):
        return self.inner.load_state_dict(state_dict, strict)

    def extra_repr(self):
        return f"tile={self.fixed or 'measured per batch size'}"
