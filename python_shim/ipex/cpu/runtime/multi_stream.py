"""MultiStreamModule: one batch split over several pinned streams."""
import warnings

import torch

from ... import _C
from .cpupool import CPUPool
from .task import Task


class MultiStreamModuleHint:
    """Describes how to split inputs (or join outputs): the positional and keyword entries
    mirror the call's arguments (or the return value). An int leaf is a dim, None means
    "whole to every stream" for inputs and "stream 0's" for outputs; tuples, lists and dicts
    nest, and an int over a container applies to every tensor in it."""

    def __init__(self, *args, **kwargs):
        self.args = list(args)
        self.kwargs = kwargs

    def __repr__(self):
        return f"MultiStreamModuleHint(args={self.args}, kwargs={self.kwargs})"


def get_default_num_streams(cpu_pool):
    """"AUTO": one stream per CPU of the pool."""
    return len(cpu_pool)


def _check_leaf(hint):
    if not (hint is None or isinstance(hint, (int, tuple, list, dict))) or isinstance(hint, bool):
        raise ValueError(f"MultiStreamModule: hint leaves must be int or None, not {hint!r}")


def _find_batch(value, hint, found):
    """Appends the size along the hinted dim of every int-hinted tensor."""
    _check_leaf(hint)
    if hint is None:
        return
    if isinstance(hint, int):
        if isinstance(value, torch.Tensor):
            if value.dim() == 0 or not -value.dim() <= hint < value.dim():
                raise ValueError(f"MultiStreamModule: split dim {hint} is out of range for a tensor of "
                                 f"{value.dim()} dims")
            found.append(value.size(hint))
        elif isinstance(value, (list, tuple)):
            for v in value:
                _find_batch(v, hint, found)
        elif isinstance(value, dict):
            for v in value.values():
                _find_batch(v, hint, found)
        else:
            raise ValueError(f"MultiStreamModule: split hint {hint} given for an input of type "
                             f"{type(value).__name__} (use None for inputs every stream gets whole)")
        return
    if isinstance(hint, dict):
        if not isinstance(value, dict):
            raise ValueError(f"MultiStreamModule: a dict hint was given for an input of type {type(value).__name__}")
        for k, h in hint.items():
            if k not in value:
                raise ValueError(f"MultiStreamModule: hint key {k!r} is not in the input dict")
            _find_batch(value[k], h, found)
        return
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"MultiStreamModule: a {type(hint).__name__} hint was given for an input of type "
                         f"{type(value).__name__}")
    if len(hint) != len(value):
        raise ValueError(f"MultiStreamModule: hint has {len(hint)} entries for an input of {len(value)}")
    for v, h in zip(value, hint):
        _find_batch(v, h, found)


def _slice(value, hint, start, length):
    if hint is None:
        return value
    if isinstance(hint, int):
        if isinstance(value, torch.Tensor):
            return value.narrow(hint, start, length)
        if isinstance(value, dict):
            return {k: _slice(v, hint, start, length) for k, v in value.items()}
        return type(value)(_slice(v, hint, start, length) for v in value)
    if isinstance(hint, dict):
        return {k: (_slice(v, hint[k], start, length) if k in hint else v) for k, v in value.items()}
    return type(value)(_slice(v, h, start, length) for v, h in zip(value, hint))


def _arg_hints(hint, args, kwargs):
    """Per-argument hints: a lone int/None applies to every argument."""
    if len(hint.args) == 1 and not hint.kwargs and (hint.args[0] is None or isinstance(hint.args[0], int)):
        return tuple(hint.args * len(args)), {k: hint.args[0] for k in kwargs}
    if len(hint.args) != len(args):
        raise ValueError(f"MultiStreamModule: input_split_hint has {len(hint.args)} positional entries for "
                         f"{len(args)} positional arguments")
    # Hints of keyword arguments left out of this call are simply unused.
    return tuple(hint.args), {k: hint.kwargs.get(k) for k in kwargs}


def split_by_hint(args, kwargs, hint, num_streams):
    """[(args, kwargs)] per stream; tensors are sliced as views. With no int-hinted tensor the
    call goes whole to one stream; an empty batch also runs on one stream."""
    arg_hints, kw_hints = _arg_hints(hint, args, kwargs)
    sizes = []
    _find_batch(args, arg_hints, sizes)
    _find_batch(kwargs, kw_hints, sizes)
    if not sizes:
        return [(args, kwargs)]
    if any(s != sizes[0] for s in sizes):
        raise ValueError(f"MultiStreamModule: inputs split along their hinted dims disagree on the batch size "
                         f"({sorted(set(sizes))})")
    parts, start = [], 0
    for n in _C.split_sizes(sizes[0], num_streams):
        parts.append((_slice(args, arg_hints, start, n), _slice(kwargs, kw_hints, start, n)))
        start += n
    return parts


def _concat(outs, hint):
    _check_leaf(hint)
    first = outs[0]
    if hint is None or len(outs) == 1:
        return first
    if isinstance(hint, int):
        if isinstance(first, torch.Tensor):
            return torch.cat(outs, dim=hint)
        if isinstance(first, dict):
            return {k: _concat([o[k] for o in outs], hint) for k in first}
        if isinstance(first, (list, tuple)):
            return type(first)(_concat([o[i] for o in outs], hint) for i in range(len(first)))
        raise ValueError(f"MultiStreamModule: concat hint {hint} given for an output of type {type(first).__name__} "
                         "(use None to take stream 0's)")
    if isinstance(hint, dict):
        if not isinstance(first, dict):
            raise ValueError(f"MultiStreamModule: a dict output hint was given for an output of type "
                             f"{type(first).__name__}")
        return {k: (_concat([o[k] for o in outs], hint[k]) if k in hint else v) for k, v in first.items()}
    if not isinstance(first, (list, tuple)) or len(first) != len(hint):
        raise ValueError(f"MultiStreamModule: output_concat_hint {hint!r} does not match an output of type "
                         f"{type(first).__name__}")
    return type(first)(_concat([o[i] for o in outs], h) for i, h in enumerate(hint))


def concat_by_hint(outputs, hint):
    """Joins per-stream outputs (stream order). The hint's positional entries describe the
    return value (several entries: a tuple); keyword entries describe a returned dict."""
    if hint.args and hint.kwargs:
        raise ValueError("MultiStreamModule: output_concat_hint takes positional or keyword entries, not both")
    if hint.kwargs:
        return _concat(outputs, dict(hint.kwargs))
    if not hint.args:
        return outputs[0]
    return _concat(outputs, hint.args[0] if len(hint.args) == 1 else tuple(hint.args))


class MultiStreamModule(torch.nn.Module):
    """Runs `model` as `num_streams` streams over consecutive slices of `cpu_pool` (default:
    every CPU the process may use, evaluated here). Each call splits its inputs by
    `input_split_hint` (or `split_fn(args, kwargs, num_streams) -> [(args, kwargs)]`) into
    micro-batches (B % S != 0 gives sizes like [2, 1, 1]; B < S uses B streams), runs them
    concurrently and joins the outputs by `output_concat_hint` (or `concat_fn(outputs)`);
    concat_output=False returns the list of per-stream outputs. forward is thread-safe."""

    def __init__(self, model, num_streams="AUTO", cpu_pool=None, concat_output=True, input_split_hint=None,
                 output_concat_hint=None, split_fn=None, concat_fn=None):
        super().__init__()
        if cpu_pool is None:
            cpu_pool = CPUPool()
        if not isinstance(cpu_pool, CPUPool):
            raise TypeError(f"MultiStreamModule: cpu_pool must be an ipex.cpu.runtime.CPUPool, not "
                            f"{type(cpu_pool).__name__}")
        if isinstance(num_streams, str):
            if num_streams.upper() != "AUTO":
                raise ValueError(f'MultiStreamModule: num_streams must be a positive int or "AUTO", not {num_streams!r}')
            num_streams = get_default_num_streams(cpu_pool)
        elif not isinstance(num_streams, int) or isinstance(num_streams, bool):
            raise TypeError(f'MultiStreamModule: num_streams must be a positive int or "AUTO", not {num_streams!r}')
        elif num_streams < 1:
            raise ValueError(f"MultiStreamModule: num_streams must be at least 1, not {num_streams}")
        if num_streams > len(cpu_pool):
            warnings.warn(f"MultiStreamModule: {num_streams} streams asked for {len(cpu_pool)} CPUs; "
                          f"using {len(cpu_pool)} streams", stacklevel=2)
            num_streams = len(cpu_pool)
        for name, h in (("input_split_hint", input_split_hint), ("output_concat_hint", output_concat_hint)):
            if h is not None and not isinstance(h, MultiStreamModuleHint):
                raise TypeError(f"MultiStreamModule: {name} must be a MultiStreamModuleHint, not {type(h).__name__}")
        self.model = model
        self.cpu_pool = cpu_pool
        self.concat_output = concat_output
        self.input_split_hint = input_split_hint or MultiStreamModuleHint(0)
        self.output_concat_hint = output_concat_hint or MultiStreamModuleHint(0)
        self.split_fn = split_fn
        self.concat_fn = concat_fn
        self.stream_pools = cpu_pool.split(num_streams)
        self._tasks = [Task(model, p) for p in self.stream_pools]

    def get_stream_number(self):
        return len(self._tasks)

    def forward(self, *args, **kwargs):
        s = len(self._tasks)
        if self.split_fn is not None:
            parts = [(tuple(a), dict(k)) for a, k in self.split_fn(args, kwargs, s)]
        else:
            parts = split_by_hint(args, kwargs, self.input_split_hint, s)
        if not 1 <= len(parts) <= s:
            raise ValueError(f"MultiStreamModule: the split gave {len(parts)} parts for {s} streams")
        futures = [task(*a, **k) for task, (a, k) in zip(self._tasks, parts)]
        outs, error = [], None
        for f in futures:  # wait for every stream, even after one failed
            try:
                outs.append(f.get())
            except Exception as e:  # noqa: BLE001  (re-raised below)
                error = error or e
        if error is not None:
            raise error
        if not self.concat_output:
            return outs
        if self.concat_fn is not None:
            return self.concat_fn(outs)
        return concat_by_hint(outs, self.output_concat_hint)
